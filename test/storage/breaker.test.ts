/**
 * Fail-fast outage answers (issue #10): with PostgreSQL unreachable, a read that
 * needs a new connection answers 503 `unavailable` within 1 s, through a breaker
 * opened by connection failures; it probes in the background and closes by
 * itself once PostgreSQL is back. PostgreSQL sits behind the chaos fault proxy,
 * which black-holes (a partition: connections accepted, nothing answered) or
 * refuses connections.
 */
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { FaultProxy } from '../../chaos/fault-proxy.js'
import { api, registerOwner, startTestApp } from '../helpers/app.js'
import { createTestDatabaseUrl } from '../helpers/db.js'
import { until } from '../ws/helpers.js'

const databaseUrl = await createTestDatabaseUrl(t)
const proxy = await FaultProxy.start(databaseUrl)
t.teardown(() => proxy.close())
const a = await startTestApp(t, { databaseUrl: proxy.urlFor(databaseUrl) })
const owner = await registerOwner(a.url)
const client = api(a.url, owner.accessToken)
const taskId = randomUUID()
t.equal((await client.post('/api/tasks', { id: taskId, title: 'there' })).status, 201)

/** A read of the task: status, code and how long it took. */
async function read(): Promise<{ status: number; code?: string; ms: number }> {
  const started = performance.now()
  const res = await client.get(`/api/tasks/${taskId}`)
  return { status: res.status, code: res.body?.error?.code, ms: performance.now() - started }
}

for (const fault of ['blackhole', 'refuse'] as const) {
  t.test(`${fault}: unavailable within 1 s while PostgreSQL is unreachable, and back by itself`, async (t) => {
    if (fault === 'blackhole') proxy.blackhole()
    else proxy.refuse()
    // The pool's open connections go (a partition left them hanging, or they were closed): every read needs a new one.
    proxy.dropConnections()
    // The first read that needs a new connection waits for the connect deadline (1 s), never postgres.js's
    // 10 s; every read after it is refused at once by the open breaker. That is usually the first read,
    // but when the drop races it, the first read fails at once on its dying connection and the second connects.
    let connected = false
    for (let i = 0; i < 6; i++) {
      const r = await read()
      t.match(r, { status: 503, code: 'unavailable' }, `read ${i + 1}`)
      if (!connected && (i === 0 || r.ms >= 500)) {
        connected = r.ms >= 500
        t.ok(r.ms < 3000, `read ${i + 1} fails at the connect deadline (1 s), not after postgres.js's 10 s (${Math.round(r.ms)} ms)`)
      } else t.ok(r.ms < 1000, `read ${i + 1}: ${Math.round(r.ms)} ms`)
    }
    const token = await api(a.url).post('/api/auth/login', { email: owner.user.email, password: owner.password, device: { name: 'x', platform: 'y' } })
    t.equal(token.status, 503, 'a login (a read of the account) too')
    proxy.heal()
    await until(async () => (await read()).status === 200, 'reads to succeed again without anyone touching the server')
    t.match((await client.get(`/api/tasks/${taskId}`)).body, { title: 'there' })
  })
}
