/**
 * Process entry: load the configuration, build the app, listen, and close with
 * grace on SIGTERM/SIGINT (the listener closes at once; plugins drain in their
 * close hooks; the process exits within SHUTDOWN_TIMEOUT_MS whatever happens).
 */
import closeWithGrace from 'close-with-grace'
import { join } from 'node:path'
import { ConfigError, loadConfig, type Config } from './config/index.js'
import { loadSigningKeys } from './auth/tokens.js'

/** Prints a start-up failure the operator can act on, without a stack, and exits. */
function fail(message: string): never {
  process.stderr.write(`tasksync: ${message}\n`)
  process.exit(1)
}

function describeDatabase(config: Config): string {
  if (!config.DATABASE_URL) return `PGlite at ${join(config.DATA_DIR, 'pglite')}`
  const u = new URL(config.DATABASE_URL)
  return `postgres at ${u.hostname}:${u.port || 5432}${u.pathname}`
}

function describeBus(config: Config): string {
  if (!config.REDIS_URL) return 'in-process — more than one instance needs REDIS_URL'
  const u = new URL(config.REDIS_URL)
  return `redis at ${u.hostname}:${u.port || 6379} (prefix ${config.REDIS_PREFIX})`
}

/** The address a person on this machine types: a wildcard listener is reached through loopback. */
function publicUrl(config: Config, app: { server: { address(): unknown } }): string {
  const address = app.server.address() as { port: number } | null
  const port = address?.port ?? config.PORT
  const host = config.HOST === '0.0.0.0' || config.HOST === '::' ? '127.0.0.1' : config.HOST.includes(':') ? `[${config.HOST}]` : config.HOST
  return `http://${host}:${port}`
}

async function main(): Promise<void> {
  let config: Config
  try {
    config = loadConfig()
  } catch (err) {
    if (err instanceof ConfigError) fail(`configuration error: ${err.message}`)
    throw err
  }

  // Checked before anything heavy loads: a bad key fails in milliseconds, not after migrations.
  await loadSigningKeys(config).catch((err: Error) => fail(`configuration error: ${err.message}`))
  const { buildApp } = await import('./app.js')
  const app = await buildApp(config).catch((err: Error) => {
    if (err instanceof ConfigError) fail(`configuration error: ${err.message}`)
    fail(`cannot start: ${err.message}`)
  })

  // Which kind of fatal error closes the process (close-with-grace logs both alike): a thrown error or event, not a rejection.
  process.on('uncaughtExceptionMonitor', (err, origin) => app.log.error({ err, origin }, `fatal: ${origin}`))
  closeWithGrace({ delay: config.SHUTDOWN_TIMEOUT_MS, logger: { error: (m: string) => app.log.error(m) } }, async ({ err, signal }) => {
    if (err) app.log.error({ err }, 'fatal error: closing')
    else app.log.info(`${signal ?? 'close'} received: draining`)
    await app.close()
  })

  try {
    await app.listen({ host: config.HOST, port: config.PORT, backlog: config.LISTEN_BACKLOG })
  } catch (err) {
    await app.close().catch(() => {})
    fail(`cannot listen on ${config.HOST}:${config.PORT}: ${(err as Error).message}`)
  }
  app.log.info(`database: ${describeDatabase(config)}`)
  app.log.info(`bus: ${describeBus(config)}`)
  if (config.generatedSecret) app.log.warn(`JWT_SECRET not set: using a generated one kept in ${join(config.DATA_DIR, 'jwt-secret')} (single instance only)`)
  const startupMs = Math.round(process.uptime() * 1000)
  const url = publicUrl(config, app)
  const where = config.WEB_APP === 'true' ? `open ${url}` : `API at ${url}/api`
  app.log.info({ instanceId: config.INSTANCE_ID, startupMs, url }, `tasksync ready in ${startupMs} ms: ${where} (API docs: ${url}/docs)`)
}

await main()
