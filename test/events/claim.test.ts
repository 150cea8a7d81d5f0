/**
 * The batch claim of a dispatch round: two dispatchers starting together on one
 * backlog share it, and each event reaches the receiver once and in rev order per
 * task; a row of a run held by someone else ends the run there (a race forced with
 * a real row lock, no sleeps), so a later delivery is never leased without the
 * ones before it; fan-out appends a held pair's new deliveries to its holder only
 * when that keeps rev order; a dispatcher without peers claims its fan-out's deliveries
 * in the same round; the commit that wrote an event wakes the dispatcher at once;
 * the fan-out cursor never passes an event whose transaction commits late, and an
 * open write transaction of another database holds nothing back.
 */
import t from 'tap'
import { randomUUID } from 'node:crypto'
import postgres from 'postgres'
import { startTestApp, registerOwner, api } from '../helpers/app.js'
import { startReceiver } from './receiver.js'
import { dispatchRound } from '../../src/storage/events/round.js'
import { noRecords } from '../../src/storage/events/webhooks.js'

const env = { WEBHOOK_ALLOW_PRIVATE: 'true', DUE_SCAN_INTERVAL_S: '0' }
const fanOutOnly = { limit: 500, derive: () => [], needsFacts: () => false }

t.test('two dispatchers claiming one backlog at once: each event once, in rev order per task, both take a share', async (t) => {
  // Three runs in flight per dispatcher: neither can take the whole backlog in one round.
  const small = { ...env, EVENT_POLL_MS: '20', WEBHOOK_CONCURRENCY: '3', WEBHOOK_ENDPOINT_CONCURRENCY: '6' }
  const a = await startTestApp(t, { env: small })
  const b = await startTestApp(t, { databaseUrl: a.databaseUrl, redisPrefix: a.redisPrefix, env: small })
  await Promise.all([a.app.events.dispatcher.stop(), b.app.events.dispatcher.stop()])
  const owner = await registerOwner(a.url)
  const c = api(a.url, owner.accessToken)
  const rx = await startReceiver(t)
  rx.secret = (await c.post('/api/webhooks', { url: rx.url, events: ['task.created', 'task.updated'] })).body.secret

  // The backlog, written while nobody dispatches: 24 tasks × 8 revs.
  const tasks = Array.from({ length: 24 }, () => randomUUID())
  await Promise.all(
    tasks.map(async (id) => {
      await c.post('/api/tasks', { id, title: 'v1' })
      for (let n = 2; n <= 8; n++) await c.patch(`/api/tasks/${id}`, { title: `v${n}` })
    }),
  )
  a.app.events.dispatcher.start()
  b.app.events.dispatcher.start()
  const total = tasks.length * 8
  await rx.waitFor((xs) => xs.length >= total, `all ${total} events`)

  t.equal(rx.arrivals.length, total, 'no event arrived twice')
  t.equal(new Set(rx.arrivals.map((x) => x.id)).size, total, 'every event arrived')
  t.ok(rx.arrivals.every((x) => x.verified), 'every delivery verifies')
  for (const id of tasks) {
    const revs = rx.arrivals.filter((x) => x.data.taskId === id).map((x) => x.data.rev)
    t.same(revs, [1, 2, 3, 4, 5, 6, 7, 8], `task ${id.slice(0, 8)}: revs in order`)
  }
  const senders = new Set(rx.arrivals.map((x) => /\((.+)\)/.exec(String(x.headers['user-agent']))?.[1]))
  t.same([...senders].sort(), [a.app.config.INSTANCE_ID, b.app.config.INSTANCE_ID].sort(), 'both dispatchers delivered a share')
  const sql = postgres(a.databaseUrl, { max: 1, onnotice: () => {} })
  t.teardown(() => sql.end())
  // The last runs' attempts are recorded by the rounds after their arrival.
  const states = async () => (await sql`select state, attempts, count(*)::int as n from webhook_deliveries group by state, attempts`).map((r) => ({ ...r }))
  while ((await states()).some((r) => r.state === 'pending')) await new Promise((resolve) => setTimeout(resolve, 25))
  t.same(await states(), [{ state: 'delivered', attempts: 1, n: total }], 'every delivery recorded delivered, at its first attempt')
})

t.test('a row of a run locked by someone else ends the run there: nothing after it is leased', async (t) => {
  const a = await startTestApp(t, { redis: false, env: { ...env, EVENT_DISPATCH: 'false' } })
  const owner = await registerOwner(a.url)
  const c = api(a.url, owner.accessToken)
  const rx = await startReceiver(t)
  await c.post('/api/webhooks', { url: rx.url, events: ['task.created', 'task.updated'] })
  const taskId = randomUUID()
  await c.post('/api/tasks', { id: taskId, title: 'v1' })
  for (let n = 2; n <= 6; n++) await c.patch(`/api/tasks/${taskId}`, { title: `v${n}` })
  const database = a.app.database
  const claim = { limit: 10, perEndpoint: 16, run: 20, leaseMs: 60_000 }
  await dispatchRound(database, { records: noRecords(), fanOut: fanOutOnly, claim: null })

  const sql = postgres(a.databaseUrl, { max: 1, onnotice: () => {} })
  t.teardown(() => sql.end())
  const ids = (await sql`select d.id from webhook_deliveries d join events e on e.seq = d.event_seq where e.task_id = ${taskId} order by e.rev`).map((r) => Number(r.id))
  t.equal(ids.length, 6)

  // Another transaction, on its own connection, holds rev 3's delivery (as a concurrent claim would).
  const other = postgres(a.databaseUrl, { max: 1, onnotice: () => {} })
  t.teardown(() => other.end())
  let release!: () => void
  const held = new Promise<void>((resolve) => (release = resolve))
  let locked!: () => void
  const isLocked = new Promise<void>((resolve) => (locked = resolve))
  const holder = other.begin(async (tx) => {
    await tx`select id from webhook_deliveries where id = ${ids[2]} for update`
    locked()
    await held
  })
  await isLocked
  const first = await dispatchRound(database, { records: noRecords(), fanOut: fanOutOnly, claim })
  t.same(first.claimed.map((d) => d.event.rev), [1, 2], 'the run stops before the held row')
  const leased = await sql`select id from webhook_deliveries where lease_until > now() order by id`
  t.same(leased.map((r) => Number(r.id)), ids.slice(0, 2), 'nothing after the held row is leased')
  release()
  await holder

  // Revs 1 and 2 delivered: the next round records them and leases the rest, in order.
  const records = noRecords()
  records.delivered.push(...first.claimed.map((d) => ({ id: d.id, status: 204, latencyMs: 1 })))
  const second = await dispatchRound(database, { records, fanOut: fanOutOnly, claim })
  t.same(second.claimed.map((d) => d.event.rev), [3, 4, 5, 6], 'the pair goes on from its head')
  const third = await dispatchRound(database, { records: noRecords(), fanOut: fanOutOnly, claim })
  t.same(third.claimed, [], 'leased runs are not claimed twice')
})

t.test("fan-out leases a held pair's new deliveries to its holder only when nothing of the pair waits unleased before them", async (t) => {
  const a = await startTestApp(t, { redis: false, env: { ...env, EVENT_DISPATCH: 'false' } })
  const owner = await registerOwner(a.url)
  const c = api(a.url, owner.accessToken)
  const rx = await startReceiver(t)
  const endpointId = (await c.post('/api/webhooks', { url: rx.url, events: ['task.created', 'task.updated'] })).body.id as string
  const taskId = randomUUID()
  const otherTask = randomUUID()
  await c.post('/api/tasks', { id: taskId, title: 'v1' })
  for (let n = 2; n <= 3; n++) await c.patch(`/api/tasks/${taskId}`, { title: `v${n}` })
  const database = a.app.database
  const held = { pairs: [{ endpointId, orderKey: taskId }], leaseMs: 60_000 }
  const withHeld = { ...fanOutOnly, held }
  // A run of two: rev 3 stays pending and unleased behind it. The fan-out's own round leaves
  // what it wrote to the next claims (every dispatcher is rung for them): the next round takes it.
  const fanned = await dispatchRound(database, { records: noRecords(), fanOut: fanOutOnly, claim: { limit: 10, perEndpoint: 16, run: 2, leaseMs: 60_000 } })
  t.ok(fanned.events.length >= 3, 'the round fans out the task events')
  t.same(fanned.claimed, [], 'and claims none of what it wrote')
  const first = await dispatchRound(database, { records: noRecords(), fanOut: fanOutOnly, claim: { limit: 10, perEndpoint: 16, run: 2, leaseMs: 60_000 } })
  t.same(first.claimed.map((d) => d.event.rev), [1, 2])

  await c.patch(`/api/tasks/${taskId}`, { title: 'v4' })
  const second = await dispatchRound(database, { records: noRecords(), fanOut: withHeld, claim: null })
  t.same(second.leased, [], 'rev 4 is not appended while rev 3 waits unleased before it')

  // Revs 1 and 2 delivered; the claim takes 3 and 4; then rev 5 and another task's first event are fanned out.
  const records = noRecords()
  records.delivered.push(...first.claimed.map((d) => ({ id: d.id, status: 204, latencyMs: 1 })))
  const third = await dispatchRound(database, { records, fanOut: fanOutOnly, claim: { limit: 10, perEndpoint: 16, run: 20, leaseMs: 60_000 } })
  t.same(third.claimed.map((d) => d.event.rev), [3, 4])
  await c.patch(`/api/tasks/${taskId}`, { title: 'v5' })
  await c.post('/api/tasks', { id: otherTask, title: 'other' })
  const fourth = await dispatchRound(database, { records: noRecords(), fanOut: withHeld, claim: { limit: 10, perEndpoint: 16, run: 20, leaseMs: 60_000 } })
  t.same(fourth.leased.map((d) => [d.event.taskId, d.event.rev, d.url]), [[taskId, 5, rx.url]], 'rev 5 is appended to the held run, with its url')
  t.same(fourth.claimed, [], 'the new pair is left to the next claims')
  const fifth = await dispatchRound(database, { records: noRecords(), fanOut: withHeld, claim: { limit: 10, perEndpoint: 16, run: 20, leaseMs: 60_000 } })
  t.same(fifth.claimed.map((d) => [d.event.taskId, d.event.rev]), [[otherTask, 1]], 'the claim takes the pair nobody holds, not the appended delivery')
  const sql = postgres(a.databaseUrl, { max: 1, onnotice: () => {} })
  t.teardown(() => sql.end())
  const [row] = await sql`select lease_until > now() as leased, state from webhook_deliveries where id = ${fourth.leased[0].id}`
  t.same({ ...row }, { leased: true, state: 'pending' }, 'the appended delivery is pending under a lease')
})

t.test('a dispatcher with no peers claims what its fan-out wrote in the same round', async (t) => {
  const a = await startTestApp(t, { redis: false, env: { ...env, EVENT_DISPATCH: 'false' } })
  const owner = await registerOwner(a.url)
  const c = api(a.url, owner.accessToken)
  const rx = await startReceiver(t)
  await c.post('/api/webhooks', { url: rx.url, events: ['task.created', 'task.updated'] })
  const taskId = randomUUID()
  await c.post('/api/tasks', { id: taskId, title: 'v1' })
  for (let n = 2; n <= 3; n++) await c.patch(`/api/tasks/${taskId}`, { title: `v${n}` })
  const round = await dispatchRound(a.app.database, { records: noRecords(), fanOut: fanOutOnly, claim: { limit: 10, perEndpoint: 16, run: 20, leaseMs: 60_000, fresh: true } })
  t.ok(round.events.length >= 3, 'the round fans out the task events')
  t.same(round.claimed.map((d) => d.event.rev), [1, 2, 3], 'and claims their deliveries, in rev order, in the same round')
  const again = await dispatchRound(a.app.database, { records: noRecords(), fanOut: fanOutOnly, claim: { limit: 10, perEndpoint: 16, run: 20, leaseMs: 60_000, fresh: true } })
  t.same(again.claimed, [], 'once')
})

t.test('a commit wakes the dispatcher: no poll interval between commit and delivery', async (t) => {
  // A poll every 60 s: only the commit's own wake can deliver within the wait below.
  const a = await startTestApp(t, { env: { ...env, EVENT_POLL_MS: '60000' } })
  const owner = await registerOwner(a.url)
  const c = api(a.url, owner.accessToken)
  const rx = await startReceiver(t)
  rx.secret = (await c.post('/api/webhooks', { url: rx.url, events: ['task.created', 'task.updated', 'comment.created'] })).body.secret
  const taskId = randomUUID()
  await c.post('/api/tasks', { id: taskId, title: 'wake' })
  await rx.waitFor((xs) => xs.some((x) => x.type === 'task.created'), 'task.created', 30_000)
  await c.patch(`/api/tasks/${taskId}`, { title: 'again' })
  await rx.waitFor((xs) => xs.some((x) => x.type === 'task.updated'), 'task.updated', 30_000)
  await c.post(`/api/tasks/${taskId}/comments`, { body: 'a comment' })
  await rx.waitFor((xs) => xs.some((x) => x.type === 'comment.created'), 'comment.created', 30_000)
  t.pass('each arrived well before the 60 s poll')
})

t.test('the fan-out cursor waits for a write transaction of its database still open, never passes its events, and ignores other databases', async (t) => {
  const a = await startTestApp(t, { redis: false, env: { ...env, EVENT_DISPATCH: 'false' } })
  const owner = await registerOwner(a.url)
  const c = api(a.url, owner.accessToken)
  const rx = await startReceiver(t)
  await c.post('/api/webhooks', { url: rx.url, events: ['*'] })
  const database = a.app.database
  const fanned = async () => (await dispatchRound(database, { records: noRecords(), fanOut: fanOutOnly, claim: null })).events.map((e) => e.taskId)
  const sql = postgres(a.databaseUrl, { max: 2, onnotice: () => {} })
  const otherUrl = new URL(a.databaseUrl)
  otherUrl.pathname = '/postgres'
  const other = postgres(otherUrl.toString(), { max: 1, onnotice: () => {} })
  t.teardown(async () => {
    await sql.end()
    await other.end()
  })

  await fanned() // what registering wrote (member.added)
  // An event written by a transaction that stays open while a later one commits.
  const late = randomUUID()
  const early = await sql.reserve()
  await early`begin`
  await early`insert into events (org_id, type, task_id, rev, change) values (${owner.organization.id}, 'task.updated', ${late}, 1, '{}')`
  const first = randomUUID()
  await c.post('/api/tasks', { id: first, title: 'committed while an older transaction is open' })
  t.same(await fanned(), [], 'nothing is fanned out past the open transaction')
  await early`commit`
  early.release()
  t.same(await fanned(), [late, first], 'then both, the late one first (transaction order)')
  t.same(await fanned(), [], 'each once')

  // An open write transaction in another database of the cluster does not hold fan-out back.
  const foreign = await other.reserve()
  await foreign`begin`
  await foreign`select pg_current_xact_id()`
  const second = randomUUID()
  await c.post('/api/tasks', { id: second, title: 'committed while another database has an open transaction' })
  t.same(await fanned(), [second], 'fanned out at once')
  await foreign`rollback`
  foreign.release()
})
