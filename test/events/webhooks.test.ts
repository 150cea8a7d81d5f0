/**
 * Webhooks end to end, on two instances of one deployment: every committed change
 * reaches the endpoint once, signed (verified by the Standard Webhooks library),
 * in rev order per task; a refused op emits nothing; another organization's
 * endpoint sees none of it; a receiver failing three times gets the event on the
 * fourth try; a receiver out of retries becomes failing with dead letters that an
 * admin redelivers; a receiver that never answers does not hold up another.
 */
import t from 'tap'
import { randomUUID } from 'node:crypto'
import postgres from 'postgres'
import { startTestApp, registerOwner, addMember, api } from '../helpers/app.js'
import { startReceiver, type Arrival } from './receiver.js'

const until = async (check: () => Promise<boolean>) => {
  while (!(await check())) await new Promise((r) => setTimeout(r, 25))
}

const env = { WEBHOOK_ALLOW_PRIVATE: 'true', EVENT_POLL_MS: '20', WEBHOOK_RETRY_BASE_MS: '50', DUE_SCAN_INTERVAL_S: '0' }

t.test('two instances: each event once, signed, in rev order; refused ops emit nothing; organizations apart', async (t) => {
  const a = await startTestApp(t, { env })
  const b = await startTestApp(t, { databaseUrl: a.databaseUrl, redisPrefix: a.redisPrefix, env })
  const owner = await registerOwner(a.url)
  const other = await registerOwner(b.url)
  const mine = await startReceiver(t)
  const theirs = await startReceiver(t)

  const ownerA = api(a.url, owner.accessToken)
  const created = await ownerA.post('/api/webhooks', { url: mine.url, events: ['*'] })
  mine.secret = created.body.secret
  const member = await addMember(a.url, owner.accessToken, 'member')
  const memberB = api(b.url, member.accessToken)
  const forbidden = await memberB.post('/api/webhooks', { url: mine.url, events: ['*'] })
  t.equal(forbidden.status, 403, 'a member may not add webhooks')
  t.equal(created.status, 201)
  t.match(created.body.secret, /^whsec_/, 'the answer carries the secret')
  const theirsCreated = await api(b.url, other.accessToken).post('/api/webhooks', { url: theirs.url, events: ['*'] })
  theirs.secret = theirsCreated.body.secret
  t.equal((await api(b.url, other.accessToken).get(`/api/webhooks/${created.body.id}/deliveries`)).status, 404, 'another organization cannot see the endpoint')

  // Work on both instances: 6 tasks, each created and changed 5 times, a comment, and refused ops.
  const tasks = Array.from({ length: 6 }, () => randomUUID())
  await Promise.all(
    tasks.map(async (id, i) => {
      const c = i % 2 ? ownerA : memberB
      t.equal((await c.post('/api/tasks', { id, title: `task ${i}` })).status, 201)
      for (let n = 1; n <= 5; n++) t.equal((await c.patch(`/api/tasks/${id}`, { title: `task ${i} v${n}` })).status, 200)
      const refused = await c.patch(`/api/tasks/${id}`, { op: { status: { set: 'nonsense' } } })
      t.equal(refused.status, 422, 'an invalid op is refused')
      t.equal((await c.post(`/api/tasks/${id}/comments`, { body: `note on ${i}` })).status, 201)
    }),
  )
  const expected = tasks.length * 7 + 1 // created + 5 updates + comment per task, and member.added
  await mine.waitFor((xs) => xs.filter((x) => x.type !== 'member.added').length >= tasks.length * 7, 'every task event')
  // Give nothing more a chance to sneak in: a test event is delivered after everything before it on the same dispatcher path.
  const probe = await ownerA.post(`/api/webhooks/${created.body.id}/test`)
  t.equal(probe.status, 202)
  await mine.waitFor((xs) => xs.some((x) => x.id === probe.body.eventId), 'the test event')

  const events = mine.arrivals.filter((x) => x.type !== 'webhook.test')
  t.ok(events.every((x) => x.verified), 'every delivery verifies with the Standard Webhooks library')
  t.equal(new Set(events.map((x) => x.id)).size, events.length, 'each event arrived once')
  t.ok(events.every((x) => x.data.organizationId === owner.organization.id), 'only this organization')
  t.equal(events.filter((x) => x.type.startsWith('task.') || x.type.startsWith('comment.')).length, tasks.length * 7, 'no event of a refused op')
  t.equal(events.length, expected, 'the task events and member.added, nothing else')
  for (const id of tasks) {
    const revs = events.filter((x) => x.data.taskId === id && x.type.startsWith('task.')).map((x) => x.data.rev)
    t.same(revs, [1, 2, 3, 4, 5, 6], `task ${id.slice(0, 8)}: revs in order`)
  }
  const update = events.find((x) => x.type === 'task.updated')!
  t.match(update.data, { type: 'task.updated', actorId: String, rev: Number, change: { fields: { title: { from: String, to: String } } } }, 'the change: fields with old and new values')
  t.equal(update.headers['webhook-timestamp'], String(Number(update.headers['webhook-timestamp'])), 'webhook-timestamp in seconds')
  const senders = new Set(mine.arrivals.map((x) => /\((.+)\)/.exec(String(x.headers['user-agent']))?.[1]))
  t.same([...senders].sort(), [a.app.config.INSTANCE_ID, b.app.config.INSTANCE_ID].sort(), 'both instances delivered a share')
  t.ok(theirs.arrivals.every((x) => x.data.organizationId === other.organization.id), 'the other organization’s endpoint got none of ours')

  await until(async () => (await ownerA.get(`/api/webhooks/${created.body.id}/deliveries?state=pending`)).body.items.length === 0)
  const log = await ownerA.get(`/api/webhooks/${created.body.id}/deliveries?limit=200`)
  t.equal(log.status, 200)
  t.ok(log.body.items.every((d: any) => d.state === 'delivered' && d.attempts >= 1 && typeof d.latencyMs === 'number'), 'the log: delivered, attempts, latency')
})

t.test('a receiver answering 500 three times gets the event on the fourth try; retries run out into dead letters', async (t) => {
  const a = await startTestApp(t, { env: { ...env, WEBHOOK_RETRY_WINDOW_S: '2' } })
  const owner = await registerOwner(a.url)
  const c = api(a.url, owner.accessToken)
  const rx = await startReceiver(t)
  rx.answer = (_x, attempt) => (attempt <= 3 ? 500 : 200)
  const ep = await c.post('/api/webhooks', { url: rx.url, events: ['task.created'] })
  rx.secret = ep.body.secret
  const taskId = randomUUID()
  await c.post('/api/tasks', { id: taskId, title: 'flaky' })
  await rx.waitFor((xs) => xs.length === 4, 'four attempts')
  t.equal(new Set(rx.arrivals.map((x) => x.id)).size, 1, 'all four carry the same webhook-id')
  t.ok(rx.arrivals.every((x) => x.verified && x.data.taskId === taskId))
  const gaps = rx.arrivals.slice(1).map((x, i) => x.at - rx.arrivals[i].at)
  t.ok(gaps[2] > gaps[0], `backoff grows (${gaps.join(', ')} ms)`)
  await until(async () => (await c.get(`/api/webhooks/${ep.body.id}/deliveries`)).body.items[0]?.state === 'delivered')
  const [d] = (await c.get(`/api/webhooks/${ep.body.id}/deliveries`)).body.items
  t.match(d, { state: 'delivered', attempts: 4, lastStatus: 200 }, 'the log shows four attempts')

  // A receiver that only fails: past the 2 s window the delivery is dead and the endpoint failing.
  rx.answer = () => 503
  const doomed = randomUUID()
  await c.post('/api/tasks', { id: doomed, title: 'doomed' })
  await until(async () => (await c.get(`/api/webhooks/${ep.body.id}/deliveries?state=dead`)).body.items.length === 1)
  const failing = (await c.get('/api/webhooks')).body.items[0]
  t.equal(failing.failing, true, 'the endpoint is marked failing')
  const later = randomUUID()
  await c.post('/api/tasks', { id: later, title: 'while failing' })
  await until(async () => (await c.get(`/api/webhooks/${ep.body.id}/deliveries?state=dead`)).body.items.length === 2)
  t.pass('an event for a failing endpoint waits as a dead letter')
  rx.answer = () => 204
  const redo = await c.post(`/api/webhooks/${ep.body.id}/redeliver`)
  t.same(redo.body, { redelivered: 2 })
  await until(async () => (await c.get(`/api/webhooks/${ep.body.id}/deliveries?state=delivered`)).body.items.length === 3)
  t.equal((await c.get('/api/webhooks')).body.items[0].failing, false, 'no longer failing')
})

t.test('a receiver that never answers holds up no other endpoint', async (t) => {
  const a = await startTestApp(t, { env: { ...env, WEBHOOK_TIMEOUT_MS: '10000' } })
  const owner = await registerOwner(a.url)
  const c = api(a.url, owner.accessToken)
  const slow = await startReceiver(t)
  const fast = await startReceiver(t)
  slow.answer = () => 'hang'
  slow.secret = (await c.post('/api/webhooks', { url: slow.url, events: ['*'] })).body.secret
  fast.secret = (await c.post('/api/webhooks', { url: fast.url, events: ['*'] })).body.secret
  const ids = Array.from({ length: 20 }, () => randomUUID())
  for (const id of ids) await c.post('/api/tasks', { id, title: 'x' })
  await fast.waitFor((xs) => ids.every((id) => xs.some((x: Arrival) => x.data.taskId === id)), 'every event at the fast receiver')
  t.ok(slow.arrivals.length <= a.app.config.WEBHOOK_ENDPOINT_CONCURRENCY, `the hanging receiver holds at most its own slots (${slow.arrivals.length})`)
})

t.test('private and loopback targets are refused unless allowed; bad input changes nothing', async (t) => {
  const a = await startTestApp(t, { redis: false, env: { DUE_SCAN_INTERVAL_S: '0' } })
  const owner = await registerOwner(a.url)
  const c = api(a.url, owner.accessToken)
  for (const url of ['http://127.0.0.1:9/x', 'http://localhost/x', 'http://[::1]/x', 'http://10.1.2.3/x', 'http://169.254.169.254/latest', 'http://192.168.0.1/']) {
    const res = await c.post('/api/webhooks', { url, events: ['*'] })
    t.same([res.status, res.body.error.code], [400, 'bad_request'], url)
  }
  const bad = await c.post('/api/webhooks', { url: 'https://example.com/x', events: ['task.exploded'] })
  t.equal(bad.status, 400, 'an unknown event type')
  t.same((await c.get('/api/webhooks')).body.items, [], 'nothing was added')
  const ok = await c.post('/api/webhooks', { url: 'https://example.com/hook', events: ['task.created', 'task.overdue'] })
  t.equal(ok.status, 201, 'a public target is fine')
  const patched = await c.patch(`/api/webhooks/${ok.body.id}`, { url: 'http://127.0.0.1/x' })
  t.equal(patched.status, 400, 'nor can it be moved to a private one')
  const off = await c.patch(`/api/webhooks/${ok.body.id}`, { active: false })
  t.equal(off.body.active, false)
  t.equal((await c.delete(`/api/webhooks/${ok.body.id}`)).status, 204)
  t.equal((await c.delete(`/api/webhooks/${ok.body.id}`)).status, 404)
})

t.test('the outbox is written with the change: a refused op writes no event row', async (t) => {
  const a = await startTestApp(t, { redis: false, env: { EVENT_DISPATCH: 'false', DUE_SCAN_INTERVAL_S: '0' } })
  const owner = await registerOwner(a.url)
  const c = api(a.url, owner.accessToken)
  const sql = postgres(a.databaseUrl, { max: 1, onnotice: () => {} })
  t.teardown(() => sql.end())
  const count = async () => Number((await sql`select count(*)::int as n from events`)[0].n)
  const taskId = randomUUID()
  await c.post('/api/tasks', { id: taskId, title: 'x' })
  const before = await count()
  t.equal((await c.patch(`/api/tasks/${taskId}`, { op: { priority: { set: 99 } } })).status, 422)
  t.equal((await c.patch(`/api/tasks/${taskId}`, { op: { title: { set: 'y' } }, baseRev: 7 })).status >= 400, true, 'a rev from the future is refused')
  t.equal(await count(), before, 'no event for refused ops')
  await c.patch(`/api/tasks/${taskId}`, { title: 'z' })
  const rows = await sql`select type, rev, actor_id, change from events where task_id = ${taskId} order by seq`
  t.same(rows.map((r) => [r.type, r.rev]), [['task.created', 1], ['task.updated', 2]])
  t.same(rows[1].change, { fields: { title: { from: 'x', to: 'z' } } })
  t.equal(rows[1].actor_id, owner.user.id)
})

t.test('housekeeping purges delivered events past EVENT_RETENTION_DAYS and keeps dead letters; /metrics has the figures', async (t) => {
  const a = await startTestApp(t, { env: { ...env, WEBHOOK_RETRY_WINDOW_S: '1', HOUSEKEEPING_INTERVAL_S: '0' } })
  const owner = await registerOwner(a.url)
  const c = api(a.url, owner.accessToken)
  const rx = await startReceiver(t)
  const ep = await c.post('/api/webhooks', { url: rx.url, events: ['task.created'] })
  rx.secret = ep.body.secret
  const ok = [randomUUID(), randomUUID(), randomUUID()]
  for (const id of ok) await c.post('/api/tasks', { id, title: 'fine' })
  await until(async () => (await c.get(`/api/webhooks/${ep.body.id}/deliveries?state=delivered`)).body.items.length === 3)
  rx.answer = () => 500
  await c.post('/api/tasks', { id: randomUUID(), title: 'doomed' })
  await until(async () => (await c.get(`/api/webhooks/${ep.body.id}/deliveries?state=dead`)).body.items.length === 1)

  const metrics = async () => {
    const text = await (await fetch(`${a.url}/metrics`)).text()
    return Object.fromEntries([...text.matchAll(/^(tasksync_events_\w+)\{[^}]*\} (\d+)/gm)].map((m) => [m[1], Number(m[2])]))
  }
  t.match(await metrics(), { tasksync_events_pending: 0, tasksync_events_delivered_total: 3, tasksync_events_dead: 1, tasksync_events_retrying: 0 })
  const now = await a.app.housekeeping.run()
  t.equal(now.eventsPurged, 0, 'nothing is old enough yet')
  const later = await a.app.housekeeping.run({ now: new Date(Date.now() + 8 * 86_400_000) })
  t.ok(later.eventsPurged! >= 3, `past the retention the delivered ones go (${later.eventsPurged})`)
  const figures = await a.app.events.figures()
  t.match(figures, { pendingDeliveries: 0, dead: 1 }, 'the dead letter stays for an admin')
})
