/**
 * kill -9 a dispatching instance (a real process) while its deliveries are in
 * flight: nothing is lost (its leases run out and the other instance delivers),
 * and a delivery made twice carries the same webhook-id and the same body.
 */
import t from 'tap'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomUUID } from 'node:crypto'
import postgres from 'postgres'
import { startTestApp, registerOwner, api, TEST_JWT_SECRET } from '../helpers/app.js'
import { TEST_REDIS_URL } from '../helpers/db.js'
import { startReceiver } from './receiver.js'

const env = { WEBHOOK_ALLOW_PRIVATE: 'true', EVENT_POLL_MS: '20', WEBHOOK_TIMEOUT_MS: '2000', EVENT_LEASE_MS: '3000', DUE_SCAN_INTERVAL_S: '0' }

t.test('SIGKILL mid-deliveries: every event still arrives; duplicates share their webhook-id', async (t) => {
  const a = await startTestApp(t, { env })
  await a.app.events.dispatcher.stop() // the child dispatches first, alone
  const owner = await registerOwner(a.url)
  const c = api(a.url, owner.accessToken)
  const rx = await startReceiver(t)
  const childId = `child-${randomUUID().slice(0, 8)}`
  // The killed instance's requests are never answered: they are in flight when it dies.
  rx.answer = (x) => (String(x.headers['user-agent']).includes(childId) ? 'hang' : 204)
  rx.secret = (await c.post('/api/webhooks', { url: rx.url, events: ['*'] })).body.secret

  const tasks = Array.from({ length: 10 }, () => randomUUID())
  for (const id of tasks) {
    await c.post('/api/tasks', { id, title: 'v0' })
    for (let n = 1; n <= 3; n++) await c.patch(`/api/tasks/${id}`, { title: `v${n}` })
  }

  const dataDir = mkdtempSync(join(tmpdir(), 'tasksync-child-'))
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    env: {
      ...process.env, ...env, NODE_ENV: 'test', HOST: '127.0.0.1', PORT: '0', DATABASE_URL: a.databaseUrl, DATABASE_POOL_SIZE: '3',
      REDIS_URL: TEST_REDIS_URL, REDIS_PREFIX: a.redisPrefix, JWT_SECRET: TEST_JWT_SECRET, DATA_DIR: dataDir, LOG_LEVEL: 'warn',
      INSTANCE_ID: childId, HOUSEKEEPING_INTERVAL_S: '0',
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  })
  const exited = new Promise((resolve) => child.once('exit', resolve))
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    await exited
    rmSync(dataDir, { recursive: true, force: true })
  })
  await rx.waitFor((xs) => xs.filter((x) => x.id && String(x.headers['user-agent']).includes(childId)).length >= 5, 'deliveries in flight from the child')
  child.kill('SIGKILL')
  await exited
  const fromChild = rx.arrivals.filter((x) => String(x.headers['user-agent']).includes(childId))
  a.app.events.dispatcher.start()

  const sql = postgres(a.databaseUrl, { max: 1, onnotice: () => {} })
  t.teardown(() => sql.end())
  const ids = (await sql`select id from events where org_id = ${owner.organization.id} and task_id is not null`).map((r) => r.id as string)
  t.equal(ids.length, tasks.length * 4, 'the outbox holds every event')
  const fromA = () => rx.arrivals.filter((x) => String(x.headers['user-agent']).includes(a.app.config.INSTANCE_ID))
  await rx.waitFor(() => ids.every((id) => fromA().some((x) => x.id === id)), 'every event delivered by the survivor')
  t.ok(rx.arrivals.every((x) => x.verified), 'every delivery verifies')
  t.ok(fromChild.length >= 5, `${fromChild.length} deliveries were in flight at the kill`)
  const twice = fromChild.filter((x) => fromA().some((y) => y.id === x.id))
  t.equal(twice.length, fromChild.length, 'each one cut short was delivered again')
  for (const x of twice) t.same(fromA().find((y) => y.id === x.id)!.data, x.data, `duplicate ${x.id.slice(0, 8)}: same webhook-id, same event`)
  for (const id of tasks) {
    const revs = fromA().filter((x) => x.data.taskId === id).map((x) => x.data.rev)
    t.same(revs, [...new Set(revs)].sort((p, q) => p - q), `task ${id.slice(0, 8)}: in rev order`)
  }
})
