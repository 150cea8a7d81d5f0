/**
 * An instance that starts before its PostgreSQL or Redis waits for them
 * (STARTUP_WAIT_MS) instead of exiting; an error that waiting cannot fix fails at once.
 * "Comes up later" is a real TCP proxy to the real server that starts listening late.
 */
import t from 'tap'
import { createServer, connect, type Server, type Socket } from 'node:net'
import { startTestApp } from '../helpers/app.js'
import { createTestDatabaseUrl, PG_ADMIN_URL, TEST_REDIS_URL } from '../helpers/db.js'
import type { Teardown } from '../helpers/teardown.js'
import { isNotUpYet, untilUp } from '../../src/config/startup-wait.js'

/** A port nothing listens on (yet). */
async function freePort(): Promise<number> {
  const s = createServer()
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve))
  const port = (s.address() as { port: number }).port
  await new Promise((resolve) => s.close(resolve))
  return port
}

/** Starts forwarding 127.0.0.1:port to target after `delayMs`; resolves when it listens. */
function lateProxy(t: Teardown, port: number, target: { host: string; port: number }, delayMs: number): Promise<void> {
  const sockets = new Set<Socket>()
  let server: Server | undefined
  t.teardown(async () => {
    for (const s of sockets) s.destroy()
    if (server) await new Promise((resolve) => server!.close(resolve))
  })
  return new Promise((resolve, reject) =>
    setTimeout(() => {
      server = createServer((client) => {
        const upstream = connect(target.port, target.host)
        for (const s of [client, upstream]) {
          sockets.add(s)
          s.on('error', () => {
            client.destroy()
            upstream.destroy()
          })
          s.on('close', () => sockets.delete(s))
        }
        client.pipe(upstream)
        upstream.pipe(client)
      })
      server.on('error', reject)
      server.listen(port, '127.0.0.1', () => resolve())
    }, delayMs),
  )
}

const pgTarget = () => {
  const u = new URL(PG_ADMIN_URL)
  return { host: u.hostname, port: Number(u.port || 5432) }
}
const redisTarget = () => {
  const u = new URL(TEST_REDIS_URL)
  return { host: u.hostname, port: Number(u.port || 6379) }
}

t.test('PostgreSQL that comes up after the instance: it waits, migrates and serves', async (t) => {
  const real = new URL(await createTestDatabaseUrl(t))
  const port = await freePort()
  const late = new URL(real)
  late.port = String(port)
  const started = Date.now()
  const proxy = lateProxy(t, port, pgTarget(), 1500)
  const app = await startTestApp(t, { databaseUrl: late.href, redis: false, env: { STARTUP_WAIT_MS: '20000' } })
  await proxy
  t.ok(Date.now() - started >= 1400, 'it started only once PostgreSQL answered')
  const health = await fetch(`${app.url}/api/health`)
  t.equal(health.status, 200)
  const body = (await health.json()) as { database?: unknown }
  t.match(JSON.stringify(body.database), /ok|up|true/)
  const reg = await fetch(`${app.url}/api/auth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ orgName: 'Late', email: 'late@example.com', password: 'correct horse battery', displayName: 'Late' }),
  })
  t.equal(reg.status, 201, 'the migrated database takes writes')
})

t.test('Redis that comes up after the instance: it waits and connects', async (t) => {
  const port = await freePort()
  const started = Date.now()
  const proxy = lateProxy(t, port, redisTarget(), 1500)
  const app = await startTestApp(t, { env: { REDIS_URL: `redis://127.0.0.1:${port}`, STARTUP_WAIT_MS: '20000' } })
  await proxy
  t.ok(Date.now() - started >= 1400, 'it started only once Redis answered')
  const health = await fetch(`${app.url}/api/health`)
  t.equal(health.status, 200)
  t.match(JSON.stringify(await health.json()), /redis/i)
})

t.test('a database that does not exist fails at once, however long the wait', async (t) => {
  const missing = new URL(PG_ADMIN_URL)
  missing.pathname = '/tasksync_no_such_database_' + Date.now()
  const started = Date.now()
  await t.rejects(startTestApp(t, { databaseUrl: missing.href, redis: false, env: { STARTUP_WAIT_MS: '60000' } }), /does not exist/)
  t.ok(Date.now() - started < 15_000, `failed in ${Date.now() - started} ms, without waiting out the minute`)
})

t.test('STARTUP_WAIT_MS=0: nothing listening fails at once', async (t) => {
  const port = await freePort()
  const url = new URL(PG_ADMIN_URL)
  url.port = String(port)
  await t.rejects(startTestApp(t, { databaseUrl: url.href, redis: false, env: { STARTUP_WAIT_MS: '0' } }))
})

t.test('untilUp gives up after the wait with the last error, and passes other errors through at once', async (t) => {
  const refused = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })
  t.ok(isNotUpYet(refused))
  t.ok(isNotUpYet(new Error('outer', { cause: refused })), 'found in the cause chain')
  t.notOk(isNotUpYet(Object.assign(new Error('password authentication failed'), { code: '28P01' })))
  let tries = 0
  const logs: string[] = []
  const started = Date.now()
  await t.rejects(
    untilUp(
      async () => {
        tries++
        throw refused
      },
      { what: 'X', waitMs: 300, firstDelayMs: 50, log: (m) => logs.push(m) },
    ),
    refused,
  )
  t.ok(Date.now() - started >= 300 && tries >= 3, `${tries} tries in ${Date.now() - started} ms`)
  t.equal(logs.length, 1, 'one line says what it waits for')
  tries = 0
  const fatal = Object.assign(new Error('bad'), { code: '28P01' })
  await t.rejects(untilUp(async () => (tries++, Promise.reject(fatal)), { what: 'X', waitMs: 5000, log: () => {} }), fatal)
  t.equal(tries, 1)
  let n = 0
  t.equal(await untilUp(async () => (++n < 3 ? Promise.reject(refused) : 'up'), { what: 'X', waitMs: 5000, firstDelayMs: 10, log: (m) => logs.push(m) }), 'up')
  t.match(logs.at(-1), /answered/)
})
