/**
 * The catch-up gate (src/sync/catchup-gate.ts): at most `concurrency` REST catch-up
 * requests at once, the others served in arrival order, and past `maxWaiting` a
 * 503 `unavailable` with Retry-After that commits nothing. Through the real app:
 * push, pull and op log pages wait their turn or are refused; a refused push
 * resent later commits once.
 */
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { CatchupGate } from '../../src/sync/catchup-gate.js'
import { startTestApp, registerOwner, api } from '../helpers/app.js'

/** A promise and its resolve, to hold a slot of the gate for as long as a test wants. */
function held(): { promise: Promise<void>; release: () => void } {
  let release!: () => void
  const promise = new Promise<void>((r) => (release = r))
  return { promise, release }
}

/** Polls `cond` until it holds (10 s at most). */
async function until(cond: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000
  while (!cond() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 2))
  if (!cond()) throw new Error('condition never held')
}

t.test('never more than `concurrency` at once, served in arrival order', async (t) => {
  const gate = new CatchupGate(2, 100)
  let running = 0
  let most = 0
  const order: number[] = []
  const holds = Array.from({ length: 6 }, held)
  const runs = holds.map((h, i) =>
    gate.run(async () => {
      order.push(i)
      running++
      most = Math.max(most, running)
      await h.promise
      running--
      return i
    }),
  )
  await until(() => order.length === 2)
  t.same(order, [0, 1], 'the first two run at once')
  t.equal(gate.waiting, 4)
  // Released out of order: the next in line still goes first.
  holds[1].release()
  await until(() => order.length === 3)
  holds[0].release()
  await until(() => order.length === 4)
  for (const h of holds) h.release()
  t.same(await Promise.all(runs), [0, 1, 2, 3, 4, 5])
  t.same(order, [0, 1, 2, 3, 4, 5], 'arrival order')
  t.equal(most, 2)
  t.equal(gate.active, 0)
  t.equal(gate.stats.admitted, 6)
})

t.test('a failing run frees its slot; past maxWaiting a request is refused, unavailable with a retry delay', async (t) => {
  const gate = new CatchupGate(1, 1)
  await t.rejects(gate.run(async () => Promise.reject(new Error('boom'))), /boom/)
  t.equal(gate.active, 0, 'the slot is free again')
  const h = held()
  const first = gate.run(() => h.promise)
  const second = gate.run(async () => 'second')
  const refused = gate.run(async () => 'never')
  await t.rejects(refused, { code: 'unavailable', details: { retryAfterS: 1 } })
  t.equal(gate.stats.refused, 1)
  h.release()
  await first
  t.equal(await second, 'second')
  t.equal(gate.active, 0)
  t.throws(() => new CatchupGate(0, 1), RangeError)
})

t.test('through the app: push, pull and op pages wait their turn; past the queue 503 with Retry-After and nothing committed', async (t) => {
  const a = await startTestApp(t, { env: { SYNC_CATCHUP_CONCURRENCY: '1', SYNC_CATCHUP_MAX_WAITING: '1' } })
  const owner = await registerOwner(a.url)
  const client = api(a.url, owner.accessToken)
  const orgId = owner.organization.id
  const clientId = randomUUID()
  const taskId = randomUUID()
  t.equal((await client.post('/api/sync/push', { clientId, mutations: [{ seq: 1, kind: 'create', taskId, task: { title: 'a' } }] })).status, 200)
  const gate = a.app.catchupGate

  // The one slot held: a push waits (nothing of it runs), the next catch-up request is refused.
  const h = held()
  const holding = gate.run(() => h.promise)
  const edit = { seq: 2, kind: 'op', taskId, baseRev: 1, op: { title: [1, 'b'] } }
  const waiting = client.post('/api/sync/push', { clientId, mutations: [edit] })
  await until(() => gate.waiting === 1)
  t.equal((await a.app.sequencer.snapshot(orgId, taskId))!.rev, 1, 'the waiting push has not run')
  for (const [method, path, body] of [
    ['post', '/api/sync/push', { clientId, mutations: [{ seq: 3, kind: 'op', taskId, baseRev: 1, op: { title: [1, 'c'] } }] }],
    ['get', '/api/sync/pull'],
    ['get', `/api/tasks/${taskId}/ops?from=1`],
  ] as const) {
    const res = method === 'post' ? await client.post(path, body) : await client.get(path)
    t.equal(res.status, 503, `${method} ${path} refused`)
    t.equal(res.body.error.code, 'unavailable')
    t.equal(res.headers.get('retry-after'), '1')
  }
  t.equal((await a.app.sequencer.snapshot(orgId, taskId))!.rev, 1, 'the refused push committed nothing')

  h.release()
  await holding
  const served = await waiting
  t.equal(served.status, 200)
  t.same(served.body.results, [{ seq: 2, status: 'applied', rev: 2 }], 'the waiting push ran once its turn came')
  const resent = await client.post('/api/sync/push', { clientId, mutations: [{ seq: 3, kind: 'op', taskId, baseRev: 1, op: { title: [1, 'c'] } }] })
  t.same(resent.body.results, [{ seq: 3, status: 'applied', rev: 3 }], 'the refused push, resent, commits')
  const page = await client.get(`/api/tasks/${taskId}/ops?from=1`)
  t.same(page.body.ops.map((o: { rev: number }) => o.rev), [1, 2, 3], 'each once, no gap')
  t.equal((await a.app.sequencer.snapshot(orgId, taskId))!.title, 'acb')
})

t.test("a device's follow-up requests go before devices that have not started; each line in arrival order", async (t) => {
  let now = 0
  const gate = new CatchupGate(1, 100, 10_000, () => now)
  const order: string[] = []
  const first = held()
  // d1 holds the one slot; d2 and d3 wait for their first turn.
  const runs = [gate.run(() => (order.push('d1 push'), first.promise), 'd1')]
  runs.push(gate.run(async () => void order.push('d2 push'), 'd2'))
  runs.push(gate.run(async () => void order.push('d3 push'), 'd3'))
  // d1's next request (its pull) comes while its push runs: a follow-up, ahead of d2 and d3.
  runs.push(gate.run(async () => void order.push('d1 pull'), 'd1'))
  // No key: a first request like any other.
  runs.push(gate.run(async () => void order.push('anonymous')))
  await until(() => gate.waiting === 4)
  first.release()
  await Promise.all(runs)
  t.same(order, ['d1 push', 'd1 pull', 'd2 push', 'd3 push', 'anonymous'])
  t.equal(gate.stats.followUps, 1, 'one follow-up')
  t.equal(gate.stats.admitted, 5)
})

t.test('a device seen longer ago than followUpMs is a newcomer again', async (t) => {
  let now = 0
  const gate = new CatchupGate(1, 100, 10_000, () => now)
  await gate.run(async () => undefined, 'd1')
  now = 10_001
  const order: string[] = []
  const hold = held()
  const runs = [gate.run(() => (order.push('d2'), hold.promise), 'd2')]
  runs.push(gate.run(async () => void order.push('d3'), 'd3'))
  runs.push(gate.run(async () => void order.push('d1 again'), 'd1'))
  await until(() => gate.waiting === 2)
  hold.release()
  await Promise.all(runs)
  t.same(order, ['d2', 'd3', 'd1 again'], 'in arrival order: d1 waited like a newcomer')
  t.equal(gate.stats.followUps, 0)
})
