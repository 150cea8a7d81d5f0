/**
 * The tasksync application as a fastify plugin, registered in dependency order:
 * config → storage → bus → sequencer → comments → attachments → auth → HTTP routes → WebSocket gateway → events out.
 * `buildApp` creates the fastify instance around it; src/server.ts only listens.
 */
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import fp from 'fastify-plugin'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { Config } from './config/index.js'
import type { Database } from './storage/db.js'
import configPlugin from './config/plugin.js'
import storagePlugin from './storage/plugin.js'
import busPlugin from './bus/plugin.js'
import metricsPlugin from './metrics/plugin.js'
import sequencerPlugin from './sequencer/plugin.js'
import syncPlugin from './sync/plugin.js'
import commentsPlugin from './comments/plugin.js'
import attachmentsPlugin from './attachments/plugin.js'
import httpBase from './http/base.js'
import healthRoutes from './http/health.js'
import authPlugin from './auth/plugin.js'
import authRoutes from './http/auth.js'
import userRoutes from './http/users.js'
import deviceRoutes from './http/devices.js'
import projectRoutes from './http/projects.js'
import organizationRoutes from './http/organization.js'
import wsPlugin from './ws/plugin.js'
import taskRoutes from './http/tasks.js'
import commentRoutes from './http/comments.js'
import attachmentRoutes from './http/attachments.js'
import syncRoutes from './http/sync.js'
import syncConflictRoutes from './http/sync-conflicts.js'
import syncLogRoutes from './http/sync-log.js'
import housekeepingPlugin from './housekeeping/plugin.js'
import webApp from './http/web.js'
import statsRoutes from './http/stats.js'
import webhookRoutes from './http/webhooks.js'
import notificationRoutes from './http/notifications.js'
import eventsPlugin from './events/plugin.js'
import { validatorCompiler } from './http/validation.js'
import { answerClientError, answerFrameworkError } from './http/errors.js'
import pretty from 'pino-pretty'

declare module 'fastify' {
  interface FastifyInstance {
    /** True from the moment close() starts: health answers 503, the gateway stops accepting. */
    draining: boolean
    /** Open WebSocket count; the gateway replaces `count` when it registers. */
    connections: { count: () => number }
  }
}

export interface AppOptions {
  config: Readonly<Config>
  /** An already open database to use instead of opening one (it is not closed with the app). */
  database?: Database
}

/** The application plugin. Each line registers one layer; later layers may use every earlier one. */
export async function tasksync(app: FastifyInstance, opts: AppOptions): Promise<void> {
  app.decorate('draining', false)
  app.decorate('connections', { count: () => 0 })
  app.addHook('preClose', async () => {
    app.draining = true
  })

  await app.register(configPlugin, { config: opts.config })
  await app.register(storagePlugin, { database: opts.database })
  await app.register(busPlugin)
  await app.register(metricsPlugin)
  await app.register(syncPlugin)
  await app.register(sequencerPlugin)
  await app.register(commentsPlugin)
  await app.register(attachmentsPlugin)
  await app.register(authPlugin)

  await app.register(httpBase)
  await app.register(healthRoutes)
  await app.register(authRoutes)
  await app.register(userRoutes)
  await app.register(deviceRoutes)
  await app.register(projectRoutes)
  await app.register(organizationRoutes)
  await app.register(taskRoutes)
  await app.register(commentRoutes)
  await app.register(attachmentRoutes)
  await app.register(syncRoutes)
  await app.register(syncConflictRoutes)
  await app.register(syncLogRoutes)
  await app.register(statsRoutes)
  await app.register(webhookRoutes)
  await app.register(notificationRoutes)
  await app.register(housekeepingPlugin)
  await app.register(wsPlugin)
  await app.register(eventsPlugin)

  // The web app last: its routes are the pages, after every API route is known.
  if (opts.config.WEB_APP === 'true') await app.register(webApp)
}

export interface BuildOptions {
  database?: Database
  /** Overrides the logger built from LOG_LEVEL. */
  logger?: FastifyServerOptions['logger']
}

/** Creates a ready-to-listen tasksync instance for one validated configuration. */
export async function buildApp(config: Readonly<Config>, opts: BuildOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    logger: opts.logger ?? {
      level: config.LOG_LEVEL,
      redact: ['req.headers.authorization'],
      serializers: { req: (req) => ({ method: req.method, url: redactUrl(req.url), id: req.id }) },
      ...(logFormat(config) === 'pretty' ? { stream: pretty({ sync: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' }) } : {}),
    },
    bodyLimit: config.HTTP_BODY_LIMIT_BYTES,
    // A request must arrive in bounded time: the head within HTTP_HEADERS_TIMEOUT_MS, all of
    // it within HTTP_REQUEST_TIMEOUT_MS (Node answers through clientErrorHandler: 408).
    requestTimeout: config.HTTP_REQUEST_TIMEOUT_MS,
    keepAliveTimeout: config.HTTP_IDLE_TIMEOUT_MS,
    http: {
      headersTimeout: Math.min(config.HTTP_HEADERS_TIMEOUT_MS, config.HTTP_REQUEST_TIMEOUT_MS),
      requestTimeout: config.HTTP_REQUEST_TIMEOUT_MS,
      // How often Node looks for connections past those times (its default is 30 s).
      connectionsCheckingInterval: Math.min(5000, Math.max(50, Math.floor(config.HTTP_HEADERS_TIMEOUT_MS / 4))),
    },
    trustProxy: parseTrustProxy(config.TRUST_PROXY),
    // Migrations on a cold PGlite can take a while on a slow machine.
    pluginTimeout: 120_000,
    routerOptions: { maxParamLength: 200 },
    // Errors raised before any route runs get the contract's shape too.
    frameworkErrors: answerFrameworkError,
    clientErrorHandler: answerClientError,
  }).withTypeProvider<TypeBoxTypeProvider>()
  app.setValidatorCompiler(validatorCompiler)
  await app.register(fp(tasksync), { config, database: opts.database })
  return app as unknown as FastifyInstance
}

/** Browsers put the access token in the WebSocket URL; it must never reach a log line. */
function redactUrl(url: string): string {
  return url.replace(/([?&]access_token=)[^&]*/g, '$1***')
}

/** Human-readable lines in development, one JSON object per line elsewhere (log collectors read those). */
export function logFormat(config: Readonly<Config>): 'pretty' | 'json' {
  return config.LOG_FORMAT ?? (config.NODE_ENV === 'development' ? 'pretty' : 'json')
}

function parseTrustProxy(value: string | undefined): boolean | string[] {
  if (!value || value === 'false') return false
  if (value === 'true') return true
  return value.split(',').map((s) => s.trim())
}

export type { Config }
