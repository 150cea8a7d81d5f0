/**
 * Op ranges (src/storage/sync/op-ranges.ts) over the in-memory task store, whose
 * ops a sequencer commits: every answer is the log's, concurrent reads of a task
 * are one read, a request past what is held reads only the revs after it, and
 * the memory held stays within its bounds.
 */
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { MemoryHub } from '../../src/bus/memory.js'
import { MemoryTaskStore } from '../../src/storage/memory-task-store.js'
import { DEFAULT_OP_RANGE_LIMITS, OpRanges, opEventJson, withOpRanges, type OpRangeLimits } from '../../src/storage/sync/op-ranges.js'
import type { StoredOp } from '../../src/storage/task-store.js'
import { memoryInstance, principal } from '../sequencer/helpers.js'

const hub = new MemoryHub()
const store = new MemoryTaskStore()
const { sequencer } = memoryInstance(t, store, hub)
const orgId = randomUUID()
const alice = principal(orgId)

/** A task with `n` revs (the create and n - 1 title inserts). */
async function taskWith(n: number): Promise<string> {
  const taskId = randomUUID()
  await sequencer.create({ principal: alice, taskId, clientId: null, seq: null, init: { title: 'a' } })
  for (let rev = 1; rev < n; rev++) await sequencer.submit({ principal: alice, taskId, clientId: null, seq: null, baseRev: rev, op: { title: [rev, 'x'] } })
  return taskId
}

/** The store's loadOps, counting reads and the ops they asked for. */
function counted() {
  const calls: { fromRev: number; limit: number }[] = []
  const load = (o: string, id: string, fromRev: number, limit: number): Promise<StoredOp[]> => {
    calls.push({ fromRev, limit })
    return store.loadOps(o, id, fromRev, limit)
  }
  return { calls, load }
}

const revs = (r: { first: number; json: string[] }) => r.json.map((j) => (JSON.parse(j) as { rev: number }).rev)

t.test('every answer is the op log, as op message JSON', async (t) => {
  const taskId = await taskWith(30)
  const ranges = new OpRanges(store.loadOps.bind(store))
  for (const [fromRev, limit] of [[1, 10], [5, 10], [0, 5], [11, 25], [28, 10], [31, 5], [40, 1], [1, 1000], [3, 0]]) {
    const want = await store.loadOps(orgId, taskId, fromRev, limit)
    const got = await ranges.range(orgId, taskId, fromRev, limit)
    t.same(got.json, want.map((o) => opEventJson(taskId, o)), `from ${fromRev}, at most ${limit}`)
    if (want.length > 0) t.equal(got.first, want[0].rev, 'first names the first rev')
    t.same(await ranges.ops(orgId, taskId, fromRev, limit), want, 'ops() answers what loadOps does')
  }
  const event = JSON.parse((await ranges.range(orgId, taskId, 2, 1)).json[0])
  t.match(event, { type: 'op', taskId, rev: 2, op: { title: [1, 'x'] }, userId: alice.userId, deviceId: alice.deviceId, clientId: null, seq: null })
  t.same(await ranges.range(randomUUID(), taskId, 1, 10), { first: 0, json: [] }, "another organization's key holds nothing of it")
})

t.test('devices reading the same range at once make one read of the log', async (t) => {
  const taskId = await taskWith(50)
  const { calls, load } = counted()
  const ranges = new OpRanges(load)
  const answers = await Promise.all(Array.from({ length: 10 }, () => ranges.range(orgId, taskId, 2, 49)))
  t.equal(calls.length, 1, 'one read for ten requests')
  for (const a of answers) t.same(revs(a), Array.from({ length: 49 }, (_, i) => i + 2))
  t.equal(ranges.stats.coalesced, 9, 'nine waited for the first')
  const pages = await Promise.all([ranges.range(orgId, taskId, 2, 20), ranges.range(orgId, taskId, 22, 20), ranges.range(orgId, taskId, 42, 9)])
  t.same(pages.map((p) => [p.first, p.json.length]), [[2, 20], [22, 20], [42, 9]], 'pages of it from memory')
  t.equal(calls.length, 1, 'without reading again')
})

t.test('a request past what is held reads only the revs after it; one before it, only those before', async (t) => {
  const taskId = await taskWith(40)
  const { calls, load } = counted()
  const ranges = new OpRanges(load)
  t.same(revs(await ranges.range(orgId, taskId, 20, 10)), [20, 21, 22, 23, 24, 25, 26, 27, 28, 29])
  t.same(revs(await ranges.range(orgId, taskId, 25, 10)), [25, 26, 27, 28, 29, 30, 31, 32, 33, 34])
  t.same(calls.at(-1), { fromRev: 30, limit: 5 }, 'revs 30..34 read, not 25..34')
  t.same(revs(await ranges.range(orgId, taskId, 15, 10)), [15, 16, 17, 18, 19, 20, 21, 22, 23, 24])
  t.same(calls.at(-1), { fromRev: 15, limit: 5 }, 'revs 15..19 read, not 15..24')
  t.equal(calls.length, 3)
  await sequencer.submit({ principal: alice, taskId, clientId: null, seq: null, baseRev: 40, op: { title: ['y'] } })
  t.same(revs(await ranges.range(orgId, taskId, 38, 100)), [38, 39, 40, 41], 'a rev committed after the read is there: the tail is read')
  t.same(calls.at(-1), { fromRev: 35, limit: 103 }, 'a request a little after what is held: the revs between are read too')
  t.same(revs(await ranges.range(orgId, taskId, 15, 27)), Array.from({ length: 27 }, (_, i) => i + 15), 'all of it held: 15..41')
  t.equal(calls.length, 4)
  t.same(revs(await ranges.range(orgId, taskId, 2, 3)), [2, 3, 4], 'apart from what is held: read')
  t.same(revs(await ranges.range(orgId, taskId, 15, 27)), Array.from({ length: 27 }, (_, i) => i + 15), 'and not kept in its place')
  t.equal(calls.length, 5)
})

t.test('a trimmed log: its answer from its first rev on, as loadOps, and nothing kept', async (t) => {
  const taskId = await taskWith(20)
  store.trimOps(orgId, taskId, 8)
  const { calls, load } = counted()
  const ranges = new OpRanges(load)
  const r = await ranges.range(orgId, taskId, 3, 10)
  t.same([r.first, revs(r)], [8, [8, 9, 10, 11, 12, 13, 14, 15, 16, 17]], 'the log starts at rev 8: the caller sees it (first > fromRev)')
  t.equal(ranges.size, 0)
  await ranges.range(orgId, taskId, 3, 10)
  t.equal(calls.length, 2)
})

t.test('a failed read is thrown to every waiter and leaves nothing behind', async (t) => {
  const taskId = await taskWith(5)
  let fail = true
  const ranges = new OpRanges(async (o, id, fromRev, limit) => {
    await new Promise((r) => setTimeout(r, 5))
    if (fail) throw new Error('connection lost')
    return store.loadOps(o, id, fromRev, limit)
  })
  const both = await Promise.allSettled([ranges.range(orgId, taskId, 1, 5), ranges.range(orgId, taskId, 1, 5)])
  t.same(both.map((b) => b.status), ['rejected', 'rejected'])
  t.equal(ranges.size, 0)
  fail = false
  t.same(revs(await ranges.range(orgId, taskId, 1, 5)), [1, 2, 3, 4, 5], 'the next request reads again')
})

t.test('bounds: per task the newest ops, in all the JSON budget, idle and old ranges dropped', async (t) => {
  const a = await taskWith(30)
  const b = await taskWith(30)
  let now = 0
  const limits: OpRangeLimits = { ...DEFAULT_OP_RANGE_LIMITS, maxOpsPerTask: 10, idleMs: 1000, maxAgeMs: 5000 }
  const { calls, load } = counted()
  const ranges = new OpRanges(load, limits, () => now)
  t.same(revs(await ranges.range(orgId, a, 1, 30)), Array.from({ length: 30 }, (_, i) => i + 1), 'the answer is whole')
  t.same(revs(await ranges.range(orgId, a, 21, 10)), Array.from({ length: 10 }, (_, i) => i + 21), 'the newest 10 are held')
  t.equal(calls.length, 1)
  await ranges.range(orgId, a, 11, 5)
  t.equal(calls.length, 2, 'older ones are read again')

  const one = ranges.size
  const tight = new OpRanges(store.loadOps.bind(store), { ...limits, maxChars: Math.ceil(one * 1.5) }, () => now)
  await tight.range(orgId, a, 21, 10)
  await tight.range(orgId, b, 21, 10)
  t.ok(tight.size <= Math.ceil(one * 1.5), `within the budget (${tight.size} chars)`)
  const alone = new OpRanges(store.loadOps.bind(store), { ...limits, maxChars: 10 }, () => now)
  t.equal((await alone.range(orgId, a, 1, 5)).json.length, 5, 'a range over the whole budget is answered')
  t.equal(alone.size, 0, 'and not kept')

  const aged = new OpRanges(load, limits, () => now)
  await aged.range(orgId, b, 21, 10)
  const before = calls.length
  now += 999
  await aged.range(orgId, b, 21, 10)
  t.equal(calls.length, before, 'used within idleMs: held')
  now += 1001
  await aged.range(orgId, b, 21, 10)
  t.equal(calls.length, before + 1, 'idle past idleMs: read again')
  for (let i = 0; i < 6; i++) {
    now += 900
    await aged.range(orgId, b, 21, 10)
  }
  t.equal(calls.length, before + 2, 'busy, but older than maxAgeMs: read again once')
})

t.test('the sequencer on a store whose loadOps goes through op ranges transforms exactly as on the log', async (t) => {
  const ranges = new OpRanges(store.loadOps.bind(store))
  const cached = withOpRanges(store, ranges)
  const other = memoryInstance(t, cached as MemoryTaskStore, new MemoryHub())
  const taskId = await taskWith(60)
  // Two edits based on rev 1, 59 revs behind: both are transformed past revs 2..60 (read once, then held).
  const first = await other.sequencer.submit({ principal: alice, taskId, clientId: null, seq: null, baseRev: 1, op: { title: [1, 'B'] } })
  const second = await other.sequencer.submit({ principal: alice, taskId, clientId: null, seq: null, baseRev: 1, op: { title: ['A'] } })
  t.same([first.rev, second.rev], [61, 62])
  const snap = await store.loadTask(orgId, taskId)
  t.equal(snap!.title, 'A' + 'a' + 'B' + 'x'.repeat(59), "the edits land where their authors put them, past everyone else's")
  t.ok(ranges.stats.reads >= 1)
  t.same(await cached.loadOps(orgId, taskId, 55, 100), await store.loadOps(orgId, taskId, 55, 100), 'loadOps through the ranges answers the log')
})
