import t from 'tap'
import fc from 'fast-check'
import { TaskFeed, HOLD, type FeedEntry, type FeedHost, type FeedMember } from '../../src/ws/task-feed.js'
import type { OpEvent } from '../../src/protocol/messages.js'

const timing = { gapGraceMs: 5, maxRetryMs: 40, recentEntries: 4, repairBatch: 3 }
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

function event(rev: number, op: OpEvent['op'] = { priority: { set: rev % 5 } }): OpEvent {
  return { type: 'op', taskId: 't', rev, op, userId: 'u', deviceId: 'd', clientId: null, seq: null, at: '' }
}

/** An op log the feed can read from (what the sequencer's opsSince answers), and a host around it. */
function harness(opts: { log?: OpEvent[]; failReads?: number; trimmedBelow?: number } = {}) {
  const log = opts.log ?? []
  let failReads = opts.failReads ?? 0
  const reads: number[] = []
  const lost: FeedMember[] = []
  const host: FeedHost = {
    async opsSince(_feed, from, limit) {
      reads.push(from)
      if (failReads > 0) {
        failReads--
        throw new Error('storage down')
      }
      return log.filter((e) => e.rev >= from && e.rev >= (opts.trimmedBelow ?? 0)).slice(0, limit)
    },
    beforeDeliver() {},
    afterDeliver() {},
    lost: (_feed, member) => void lost.push(member),
  }
  return { log, host, reads, lost, feed: new TaskFeed('o', 't', host, timing) }
}

function member(): FeedMember & { revs: number[] } {
  const revs: number[] = []
  return { revs, receive: (entry: FeedEntry) => void revs.push(entry.event.rev) }
}

const until = async (cond: () => boolean, ms = 2000) => {
  const end = Date.now() + ms
  while (!cond() && Date.now() < end) await sleep(2)
}

t.test('delivers in rev order, once, and drops duplicates and stale revs', async (t) => {
  const { feed } = harness()
  const m = member()
  feed.hold(m)
  feed.release(m, 2)
  for (const rev of [3, 3, 4, 2, 1, 5, 4]) feed.ingest({ event: event(rev) })
  t.same(m.revs, [3, 4, 5])
  t.equal(feed.head, 5)
})

t.test('buffers an early arrival until the missing rev arrives live', async (t) => {
  const { feed, reads } = harness()
  const m = member()
  feed.hold(m)
  feed.release(m, 0)
  feed.ingest({ event: event(2) })
  feed.ingest({ event: event(3) })
  t.same(m.revs, [], 'nothing out of order')
  feed.ingest({ event: event(1) })
  t.same(m.revs, [1, 2, 3])
  await sleep(20)
  t.same(reads, [], 'no log read was needed')
})

t.test('repairs a lost publication from the op log', async (t) => {
  const log = [1, 2, 3, 4, 5, 6, 7].map((r) => event(r))
  const { feed, reads } = harness({ log })
  const m = member()
  feed.hold(m)
  feed.release(m, 1)
  feed.ingest({ event: log[6] }) // 2..6 lost
  await until(() => m.revs.length === 6)
  t.same(m.revs, [2, 3, 4, 5, 6, 7])
  t.ok(reads.length >= 2, 'read in batches of repairBatch')
})

t.test('a lost last publication is repaired once the latest rev is known', async (t) => {
  const log = [1, 2, 3].map((r) => event(r))
  const { feed } = harness({ log })
  const m = member()
  feed.hold(m)
  feed.release(m, 1)
  feed.ingest({ event: log[1] })
  // rev 3's publication never comes; the probe of the latest rev says 3.
  feed.noteCommitted(3)
  await until(() => m.revs.length === 2)
  t.same(m.revs, [2, 3])
})

t.test('ops committed while a member is held come once, after its read', async (t) => {
  const { feed } = harness()
  const a = member()
  const b = member()
  feed.hold(a)
  feed.release(a, 3)
  feed.hold(b)
  feed.ingest({ event: event(4) })
  feed.ingest({ event: event(5) })
  t.equal(feed.members.get(b), HOLD)
  t.same(b.revs, [], 'held')
  // b's read (started after hold) saw rev 4: only 5 is owed.
  feed.release(b, 4)
  t.same(b.revs, [5])
  feed.ingest({ event: event(6) })
  t.same(a.revs, [4, 5, 6])
  t.same(b.revs, [5, 6])
})

t.test('a member released behind the head catches up from recent entries, else from the log', async (t) => {
  const log = [1, 2, 3, 4, 5, 6, 7, 8].map((r) => event(r))
  const { feed } = harness({ log })
  const a = member()
  feed.hold(a)
  feed.release(a, 0)
  for (const e of log) feed.ingest({ event: e })
  const near = member()
  feed.hold(near)
  feed.release(near, 6)
  t.same(near.revs, [7, 8], 'from the recent entries')
  const far = member()
  feed.hold(far)
  feed.release(far, 1)
  await until(() => far.revs.length === 7)
  t.same(far.revs, [2, 3, 4, 5, 6, 7, 8], 'from the log (recent keeps only 4)')
  feed.ingest({ event: event(9) })
  t.same(far.revs.at(-1), 9)
  t.same(near.revs, [7, 8, 9])
})

t.test('a member released ahead of the feed makes the feed repair up to it', async (t) => {
  const log = [1, 2, 3, 4].map((r) => event(r))
  const { feed } = harness({ log })
  const a = member()
  const b = member()
  feed.hold(a)
  feed.release(a, 1)
  feed.hold(b)
  feed.release(b, 4)
  await until(() => a.revs.length === 3)
  t.same(a.revs, [2, 3, 4])
  t.same(b.revs, [])
})

t.test('a feed without a joiner starts at the earliest arrival after the grace period', async (t) => {
  const { feed } = harness()
  const m = member()
  feed.members.set(m, 6) // a scope member adopted at the first delivered rev
  feed.ingest({ event: event(8) })
  feed.ingest({ event: event(7) }) // crossed publications
  await until(() => m.revs.length === 2)
  t.same(m.revs, [7, 8])
})

t.test('a failing log read is retried until storage is back', async (t) => {
  const log = [1, 2, 3].map((r) => event(r))
  const { feed, reads } = harness({ log, failReads: 2 })
  const m = member()
  feed.hold(m)
  feed.release(m, 1)
  feed.ingest({ event: log[2] })
  await until(() => m.revs.length === 2)
  t.same(m.revs, [2, 3])
  t.equal(reads.length, 3)
})

t.test('revs the log no longer holds make every member resync', async (t) => {
  const log = [1, 2, 3, 4].map((r) => event(r))
  const { feed, lost } = harness({ log, trimmedBelow: 3 })
  const m = member()
  feed.hold(m)
  feed.release(m, 1)
  feed.ingest({ event: log[3] })
  await until(() => lost.length === 1)
  t.same(lost, [m])
  t.equal(feed.members.size, 0)
})

t.test('the project is tracked through moves', async (t) => {
  const { feed } = harness()
  const moves: [string | null | undefined, string | null | undefined][] = []
  ;(feed as unknown as { host: FeedHost }).host.beforeDeliver = (_f, entry, prev) => void moves.push([prev, entry.projectId])
  const m = member()
  feed.hold(m)
  feed.release(m, 1, 'p1')
  feed.ingest({ event: event(2, { projectId: { set: 'p2' } }) })
  feed.ingest({ event: event(3, { title: ['x'] }) })
  feed.ingest({ event: event(4, { projectId: { set: null } }), projectId: null })
  t.same(moves, [['p1', 'p2'], ['p2', 'p2'], ['p2', null]])
  t.equal(feed.projectId, null)
})

t.test('property: any mix of reordering, duplicates and losses delivers 1..n once in order', async (t) => {
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 1, max: 30 }),
      fc.array(fc.tuple(fc.nat(), fc.boolean(), fc.boolean()), { minLength: 30, maxLength: 30 }),
      fc.integer({ min: 0, max: 5 }),
      async (n, noise, joinAt) => {
        const log = Array.from({ length: n }, (_, i) => event(i + 1))
        const { feed } = harness({ log })
        const m = member()
        feed.hold(m)
        const start = Math.min(joinAt, n)
        // Arrivals: each rev maybe dropped, maybe doubled, in a shuffled order.
        const arrivals: number[] = []
        log.forEach((e, i) => {
          const [, drop, dup] = noise[i]
          if (!drop) arrivals.push(e.rev)
          if (dup) arrivals.push(e.rev)
        })
        arrivals.sort((a, b) => noise[a % 30][0] - noise[b % 30][0])
        const half = Math.floor(arrivals.length / 2)
        for (const rev of arrivals.slice(0, half)) feed.ingest({ event: event(rev) })
        feed.release(m, start)
        for (const rev of arrivals.slice(half)) feed.ingest({ event: event(rev) })
        feed.noteCommitted(n)
        await until(() => feed.head === n && m.revs.length >= n - start, 3000)
        feed.close()
        const want = Array.from({ length: n - start }, (_, i) => start + i + 1)
        if (JSON.stringify(m.revs) !== JSON.stringify(want)) throw new Error(`got ${m.revs} want ${want}`)
      },
    ),
    { numRuns: 60 },
  )
  t.pass('held for every case')
})
