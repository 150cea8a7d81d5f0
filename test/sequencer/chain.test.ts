/**
 * A hot task's queued ops commit as one chain of consecutive revs in one
 * statement: each still its own rev, op, mutation record and answer, in order;
 * a chain not written whole commits its ops one by one, and a failed one acks
 * nothing.
 */
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { MemoryHub } from '../../src/bus/memory.js'
import { openDatabase } from '../../src/storage/index.js'
import { MemoryTaskStore } from '../../src/storage/memory-task-store.js'
import type { CommitOutcome, CommitRow } from '../../src/storage/task-store.js'
import type { CommitResult } from '../../src/sequencer/index.js'
import { TaskSyncError } from '../../src/protocol/errors.js'
import { createTestDatabaseUrl } from '../helpers/db.js'
import { instance, memoryInstance, principal, replay } from './helpers.js'

const url = await createTestDatabaseUrl(t)
await (await openDatabase({ databaseUrl: url, dataDir: '/tmp', poolSize: 1 })).close()
const hub = new MemoryHub()

t.test('ops sent at once to one task: chains, every op its own rev, record and answer, in order', async (t) => {
  const { sequencer, store } = await instance(t, url, hub)
  const orgId = randomUUID()
  const taskId = randomUUID()
  await sequencer.create({ principal: principal(orgId), taskId, clientId: null, seq: null, init: { title: '' } })
  const before = sequencer.commitStats
  const writers = Array.from({ length: 30 }, (_, i) => ({ who: principal(orgId), clientId: randomUUID(), letter: String.fromCharCode(97 + (i % 26)) }))
  const answered: number[] = []
  const results = await Promise.all(
    writers.map((w) =>
      sequencer.submit({ principal: w.who, taskId, baseRev: 1, clientId: w.clientId, seq: 1, op: { title: [w.letter] } }).then((r) => {
        answered.push(r.rev)
        return r
      }),
    ),
  )
  const stats = sequencer.commitStats
  t.same(results.map((r) => r.rev).sort((x, y) => x - y), Array.from({ length: 30 }, (_, i) => i + 2), 'revs 2…31, one each')
  t.same(answered, [...answered].sort((x, y) => x - y), 'answered in rev order')
  t.ok(results.every((r) => !r.duplicate && !r.noop && r.event?.rev === r.rev), 'each committed with its event')
  t.equal(stats.rows - before.rows, 30, 'thirty rows written')
  t.ok(stats.statements - before.statements < 30, `in fewer statements (${stats.statements - before.statements}): the queued ops chained`)
  const { content, revs } = await replay(store, orgId, taskId)
  t.same(revs, Array.from({ length: 31 }, (_, i) => i + 1), 'the op log is gap-free')
  const snap = await sequencer.snapshot(orgId, taskId)
  t.equal(snap?.rev, 31)
  t.equal(snap?.title, content.title, 'the snapshot is the replay of the log')
  t.same([...snap!.title].sort(), writers.map((w) => w.letter).sort(), 'every insert is in the title')
  for (const [i, w] of writers.entries()) {
    t.match(await store.findMutation(orgId, w.clientId, 1), { rev: results[i].rev, taskId }, 'its (clientId, seq) recorded at its rev')
    t.same(results[i].snapshot.rev, results[i].rev, 'its snapshot at its rev')
  }
  const ops = await store.loadOps(orgId, taskId, 2, 100)
  for (const [i, w] of writers.entries()) t.equal(ops[results[i].rev - 2].clientId, w.clientId, 'the op at its rev is its own')
})

t.test('a resend among queued ops: the chain is refused whole, each op then answered exactly', async (t) => {
  const { sequencer, store } = await instance(t, url, hub)
  const orgId = randomUUID()
  const taskId = randomUUID()
  const me = principal(orgId)
  const clientId = randomUUID()
  await sequencer.create({ principal: me, taskId, clientId: null, seq: null, init: { title: 'x' } })
  // Bound beforehand, the ops reach the task's queue in the order sent.
  await sequencer.bindClient(me, clientId)
  const first = { principal: me, taskId, baseRev: 1, clientId, seq: 1, op: { title: [1, 'a'] } }
  const [a, b, again, c, other] = await Promise.all([
    sequencer.submit(first),
    sequencer.submit({ principal: me, taskId, baseRev: 1, clientId, seq: 2, op: { title: [1, 'b'] } }),
    sequencer.submit(first),
    sequencer.submit({ principal: me, taskId, baseRev: 1, clientId, seq: 3, op: { priority: { set: 3 } } }),
    sequencer.submit({ principal: me, taskId, baseRev: 1, clientId, seq: 1, op: { title: [1, 'z'] } }).catch((err: unknown) => err),
  ])
  t.same([a.rev, a.duplicate], [2, false])
  t.same([b.rev, b.duplicate], [3, false])
  t.same([again.rev, again.duplicate], [2, true], 'the resend answers the original ack')
  t.same([c.rev, c.duplicate], [4, false])
  t.ok(other instanceof TaskSyncError && other.code === 'already_exists', 'another op under a used seq is refused')
  const { revs } = await replay(store, orgId, taskId)
  t.same(revs, [1, 2, 3, 4], 'nothing written twice')
  t.match(await sequencer.snapshot(orgId, taskId), { rev: 4, title: 'xba', priority: 3 })
})

/** The memory store with the chain statement failing the way `fault` says (single rows still commit). */
class ChainFault extends MemoryTaskStore {
  constructor(private readonly fault: () => Error) {
    super()
  }

  override async commitOps(rows: CommitRow[]): Promise<CommitOutcome[]> {
    if (rows.length > 1) throw this.fault()
    return super.commitOps(rows)
  }
}

t.test('a chain whose statement fails acks none of its ops', async (t) => {
  const store = new ChainFault(() => Object.assign(new Error('connection lost'), { code: 'ECONNRESET' }))
  const { sequencer } = memoryInstance(t, store, new MemoryHub())
  const orgId = randomUUID()
  const taskId = randomUUID()
  const me = principal(orgId)
  const clientId = randomUUID()
  await sequencer.create({ principal: me, taskId, clientId: null, seq: null, init: { title: '' } })
  const settled = await Promise.allSettled([1, 2, 3, 4].map((seq) => sequencer.submit({ principal: me, taskId, baseRev: 1, clientId, seq, op: { title: [String(seq)] } })))
  const acked = settled.filter((s): s is PromiseFulfilledResult<CommitResult> => s.status === 'fulfilled').map((s) => s.value.rev)
  const refused = settled.filter((s) => s.status === 'rejected').map((s) => (s as PromiseRejectedResult).reason)
  t.ok(refused.length > 0, 'the chained ops failed')
  t.ok(refused.every((e) => e instanceof TaskSyncError && e.code === 'unavailable'), 'as unavailable')
  const { revs } = await replay(store, orgId, taskId)
  t.same(revs, [1, ...acked], 'exactly the acked ops are in the log')
  for (const [i, s] of settled.entries()) {
    const record = await store.findMutation(orgId, clientId, i + 1)
    t.equal(record !== null, s.status === 'fulfilled', `seq ${i + 1}: recorded if and only if acked`)
  }
  // The client resends what failed: each commits, on its own.
  for (const [i, s] of settled.entries()) {
    if (s.status === 'fulfilled') continue
    const res = await sequencer.submit({ principal: me, taskId, baseRev: 1, clientId, seq: i + 1, op: { title: [String(i + 1)] } })
    t.equal(res.duplicate, false)
  }
  t.equal((await sequencer.snapshot(orgId, taskId))?.rev, 5)
})

t.test('a chain that loses a race (deadlock) commits its ops one by one', async (t) => {
  const store = new ChainFault(() => Object.assign(new Error('deadlock detected'), { code: '40P01' }))
  const { sequencer } = memoryInstance(t, store, new MemoryHub())
  const orgId = randomUUID()
  const taskId = randomUUID()
  const me = principal(orgId)
  const clientId = randomUUID()
  await sequencer.create({ principal: me, taskId, clientId: null, seq: null, init: { title: '' } })
  const results = await Promise.all([1, 2, 3, 4, 5].map((seq) => sequencer.submit({ principal: me, taskId, baseRev: 1, clientId, seq, op: { title: [String(seq)] } })))
  t.same(results.map((r) => r.rev), [2, 3, 4, 5, 6], 'each committed, in order')
  t.same((await replay(store, orgId, taskId)).revs, [1, 2, 3, 4, 5, 6])
})
