/**
 * What every route stands on: the error handler, CORS, security headers, the
 * rate limiter (used by the auth routes only) and the OpenAPI document with its UI.
 * Registered before any route so every route is documented and protected.
 */
import fp from 'fastify-plugin'
import type { FastifySchema, RouteOptions } from 'fastify'
import { ErrorResponse } from './schemas.js'
import cors from '@fastify/cors'
import helmet from '@fastify/helmet'
import rateLimit from '@fastify/rate-limit'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import errors from './errors.js'
import { utf8Body } from './text.js'
import { TaskSyncError } from '../protocol/errors.js'
import { RedisBus } from '../bus/redis.js'

/**
 * Statuses a route answers because of its shape rather than its handler, added to
 * every documented route so the OpenAPI document lists them all: 400 when it
 * validates input or reads a body, 413 when it reads a body, 401 (and 503: the token check reads
 * the database) when it needs a token, 429 when it is rate limited, and 500.
 */
function documentTransportStatuses(route: RouteOptions): void {
  const schema = route.schema as (FastifySchema & { hide?: boolean; security?: unknown }) | undefined
  requireSchemas(route)
  if (!schema || schema.hide || !schema.response) return
  const response = schema.response as Record<string, unknown>
  const add = (status: number) => {
    if (!(status in response)) response[status] = ErrorResponse
  }
  // Fastify reads a JSON body on every method but GET and HEAD, declared or not.
  const takesBody = [route.method].flat().some((m) => m !== 'GET' && m !== 'HEAD')
  if (takesBody || schema.querystring || schema.params) add(400)
  if (takesBody) add(413)
  if (schema.security) {
    add(401)
    add(503)
  }
  if ((route.config as { rateLimit?: unknown } | undefined)?.rateLimit) add(429)
  add(500)
}

/**
 * Every route is described, or the app does not start: a public route declares its
 * success answer (a 2xx response schema) and its path parameters; an internal one
 * says `schema: {hide: true}`. The generated suites (test/hostile) probe every route
 * of the OpenAPI document, so an undescribed route would escape them.
 */
function requireSchemas(route: RouteOptions): void {
  const schema = route.schema as (FastifySchema & { hide?: boolean }) | undefined
  const name = `${[route.method].flat().join(',')} ${route.url}`
  const fix = 'declare its schemas (README, "Adding a route")'
  if (!schema) throw new Error(`route ${name} has no schema: ${fix}, or mark it internal with schema: {hide: true}`)
  if (schema.hide) return
  const statuses = Object.keys((schema.response as object | undefined) ?? {})
  if (!statuses.some((s) => /^2\d\d$/.test(s))) throw new Error(`route ${name} documents no success response: ${fix}`)
  const params = [...route.url.matchAll(/:([A-Za-z0-9_]+)/g)].map((m) => m[1])
  const declared = Object.keys(((schema.params as { properties?: object } | undefined)?.properties) ?? {})
  const missing = params.filter((p) => !declared.includes(p))
  if (missing.length > 0) throw new Error(`route ${name} does not declare its path parameters ${missing.join(', ')}: ${fix}`)
}

export default fp(
  async (app) => {
    const { CORS_ORIGIN, REDIS_PREFIX } = app.config
    await app.register(errors)
    app.addHook('onRoute', documentTransportStatuses)
    // JSON is the one body format. It is read as bytes and decoded strictly, so bytes
    // that are not UTF-8 are refused instead of silently becoming U+FFFD.
    const parseJson = app.getDefaultJsonParser('error', 'error')
    app.removeAllContentTypeParsers()
    app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, raw, done) => {
      let text: string
      try {
        text = utf8Body(raw as Buffer)
      } catch (err) {
        return done(err as Error, undefined)
      }
      parseJson(request, text, done)
    })
    await app.register(cors, {
      origin: CORS_ORIGIN === '*' ? '*' : CORS_ORIGIN.split(',').map((o) => o.trim()),
      methods: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'],
      allowedHeaders: ['Authorization', 'Content-Type', 'If-Match', 'Range', 'X-Device-Key'],
      exposedHeaders: ['ETag', 'Retry-After', 'Content-Range', 'Content-Disposition', 'Accept-Ranges'],
      maxAge: 600,
    })
    await app.register(helmet, {
      contentSecurityPolicy: {
        // The docs UI loads its scripts and styles from /docs itself and icons as data: URIs; the web
        // app shows attachment thumbnails from blob: URLs (read with the bearer token, so no plain <img src>).
        directives: { 'img-src': ["'self'", 'data:', 'blob:'], 'upgrade-insecure-requests': null },
      },
    })
    // Counters live in Redis when there is one, so every instance enforces one limit.
    const redis = app.bus instanceof RedisBus ? app.bus.commands : undefined
    await app.register(rateLimit, {
      global: false,
      redis,
      nameSpace: `${REDIS_PREFIX}ratelimit:`,
      skipOnError: true,
      errorResponseBuilder: (_req, ctx) =>
        new TaskSyncError('rate_limited', `too many requests, retry in ${Math.ceil(ctx.ttl / 1000)} s`, {
          retryAfterS: Math.ceil(ctx.ttl / 1000),
        }),
    })
    await app.register(swagger, {
      openapi: {
        info: {
          title: 'tasksync',
          version: '0.1.0',
          description: 'Real-time task collaboration: REST API (the WebSocket protocol is in docs/protocol.md).',
        },
        components: {
          securitySchemes: {
            bearer: {
              type: 'http',
              scheme: 'bearer',
              bearerFormat: 'JWT',
              description:
                "An access token: tasksync's own (from register, login or refresh), or, with AUTH_JWKS_URL set, one signed by the app's identity provider " +
                '(bring your own auth: its organization, user and device are provisioned on first sight). With an identity provider\'s token, the optional ' +
                'header `X-Device-Key` (1–128 visible ASCII characters, default `default`; `?device_key=` on /ws) names the install it is used on.',
            },
          },
        },
      },
    })
    await app.register(swaggerUi, { routePrefix: '/docs', uiConfig: { validatorUrl: null } })
  },
  { name: 'http-base', dependencies: ['config', 'bus'] },
)
