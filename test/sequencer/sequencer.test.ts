/**
 * The sequencer's rules on the in-memory task store: revs, transforms, conflicts,
 * idempotency, errors, deletion, the replay window, projects, announcements and
 * drain. The PostgreSQL store is held to the same writes by the store contract
 * suite (test/storage), and exercised with two instances in concurrency.test.ts.
 */
import t from 'tap'
import type { Test } from 'tap'
import { randomUUID } from 'node:crypto'
import { MemoryHub } from '../../src/bus/memory.js'
import { TaskSyncError } from '../../src/protocol/errors.js'
import type { CommitNotice } from '../../src/bus/notices.js'
import { MemoryTaskStore } from '../../src/storage/memory-task-store.js'
import { contentOf, memoryInstance, principal, replay } from './helpers.js'

const hub = new MemoryHub()
const store = new MemoryTaskStore()
const { sequencer, bus } = memoryInstance(t, store, hub, { replayWindow: 20 })
const orgId = randomUUID()
const alice = principal(orgId)

async function rejects(t: Test, p: Promise<unknown>, code: string, name: string): Promise<void> {
  try {
    await p
    t.fail(`${name}: expected ${code}`)
  } catch (err) {
    t.type(err, TaskSyncError, name)
    t.equal((err as TaskSyncError).code, code, `${name}: ${(err as Error).message}`)
  }
}


t.test('create answers rev 1 and stores the creation as an op on create()', async (t) => {
  const taskId = randomUUID()
  const res = await sequencer.create({ principal: alice, taskId, clientId: null, seq: null, init: { title: 'Ship v1', tags: ['b', 'a'], priority: 2 } })
  t.equal(res.rev, 1)
  t.equal(res.duplicate, false)
  t.same(res.snapshot.tags, ['a', 'b'])
  t.same(res.snapshot.clock, { [alice.deviceId]: 1 })
  t.equal(res.snapshot.updatedBy, alice.userId)
  t.match(res.snapshot.createdAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
  t.equal(res.event?.rev, 1)
  const stored = await sequencer.snapshot(orgId, taskId)
  t.same(stored, res.snapshot, 'the stored snapshot is the one answered')
  const { content, revs } = await replay(store, orgId, taskId)
  t.same(revs, [1])
  t.same(content, contentOf(res.snapshot), 'replaying the log gives the snapshot')
  const ops = await sequencer.opsSince(orgId, taskId, 1, 10)
  t.equal(ops.length, 1)
  t.same(ops[0], res.event, 'the op log answers the event subscribers got')
  t.equal(store.history(orgId, taskId).length, 1, 'one history entry')
})

t.test('ops based on an old rev are transformed against what was committed since', async (t) => {
  const taskId = randomUUID()
  await sequencer.create({ principal: alice, taskId, clientId: null, seq: null, init: { title: 'abc' } })
  const bob = principal(orgId)
  const a = await sequencer.submit({ principal: alice, taskId, baseRev: 1, clientId: null, seq: null, op: { title: ['X'] } })
  const b = await sequencer.submit({ principal: bob, taskId, baseRev: 1, clientId: null, seq: null, op: { title: [3, 'Y'] } })
  t.equal(a.rev, 2)
  t.equal(b.rev, 3)
  t.equal(b.snapshot.title, 'XabcY', 'both intents kept')
  t.same(b.event?.op, { title: [4, 'Y'] }, 'the committed op is the transformed one')
  t.same(b.snapshot.clock, { [alice.deviceId]: 2, [bob.deviceId]: 1 }, 'the vector clock counts ops per device')
  const { content, revs } = await replay(store, orgId, taskId)
  t.same(revs, [1, 2, 3])
  t.same(content, contentOf(b.snapshot))
  const history = store.history(orgId, taskId)
  t.same(history[2].changes, { title: { from: 'Xabc', to: 'XabcY' } })
})

t.test('concurrent status cancelled and an assignee change record conflicts', async (t) => {
  const taskId = randomUUID()
  await sequencer.create({ principal: alice, taskId, clientId: null, seq: null, init: {} })
  const u1 = randomUUID()
  const u2 = randomUUID()
  await sequencer.submit({ principal: alice, taskId, baseRev: 1, clientId: null, seq: null, op: { status: { set: 'done' }, assigneeId: { set: u1 } } })
  const res = await sequencer.submit({ principal: alice, taskId, baseRev: 1, clientId: null, seq: null, op: { status: { set: 'cancelled' }, assigneeId: { set: u2 } } })
  t.equal(res.snapshot.status, 'done', 'the one committed first stays')
  t.equal(res.snapshot.assigneeId, u2, 'last writer wins for the assignee')
  t.same(res.conflicts.map((c) => c.field).sort(), ['assigneeId', 'status'])
  const rows = store.conflictsOf(orgId, taskId).sort((a, b) => a.field.localeCompare(b.field))
  t.equal(rows.length, 2)
  const { field, committedRev, incomingRev, committedValue, incomingValue } = rows[1]
  t.same({ field, committedRev, incomingRev, committedValue, incomingValue }, { field: 'status', committedRev: 2, incomingRev: 3, committedValue: 'done', incomingValue: 'cancelled' })
})

t.test('(clientId, seq) makes create and op idempotent', async (t) => {
  const taskId = randomUUID()
  const clientId = randomUUID()
  const create = { principal: alice, taskId, clientId, seq: 1, init: { title: 't' } }
  const first = await sequencer.create(create)
  const again = await sequencer.create(create)
  t.equal(again.duplicate, true)
  t.equal(again.rev, 1)
  t.equal(again.event, null)
  const op = { principal: alice, taskId, baseRev: 1, clientId, seq: 2, op: { title: [1, '!'] } }
  const r2 = await sequencer.submit(op)
  await sequencer.submit({ ...op, seq: 3, baseRev: 2, op: { priority: { set: 3 } } })
  const dup = await sequencer.submit(op)
  t.same({ rev: dup.rev, duplicate: dup.duplicate }, { rev: r2.rev, duplicate: true }, 'the original ack')
  t.equal(dup.snapshot.rev, 3, 'with the current snapshot')
  t.equal(dup.snapshot.title, 't!', 'applied once')
  t.same((await replay(store, orgId, taskId)).revs, [1, 2, 3], 'nothing more committed')
  // A resend after the task was deleted still answers the original ack.
  await sequencer.submit({ ...op, seq: 4, baseRev: 3, op: { delete: true } })
  const late = await sequencer.submit(op)
  t.same({ rev: late.rev, duplicate: late.duplicate }, { rev: 2, duplicate: true })
  t.equal(first.rev, 1)
  await rejects(t, sequencer.submit({ ...op, taskId: randomUUID() }), 'already_exists', 'a seq reused for another mutation')
})

t.test('a resend that races the original commits once', async (t) => {
  const taskId = randomUUID()
  const clientId = randomUUID()
  await sequencer.create({ principal: alice, taskId, clientId, seq: 1, init: {} })
  const op = { principal: alice, taskId, baseRev: 1, clientId, seq: 2, op: { description: ['hi'] } }
  const results = await Promise.all([sequencer.submit(op), sequencer.submit(op), sequencer.submit(op)])
  t.same(results.map((r) => r.rev), [2, 2, 2])
  t.same(results.map((r) => r.duplicate), [false, true, true])
  t.same((await replay(store, orgId, taskId)).revs, [1, 2])
})

t.test('errors', async (t) => {
  const taskId = randomUUID()
  const clientId = randomUUID()
  await sequencer.create({ principal: alice, taskId, clientId, seq: 1, init: { title: 'abc' } })
  const base = { principal: alice, taskId, baseRev: 1, clientId: null, seq: null }
  await rejects(t, sequencer.submit({ ...base, op: { title: [9, 'x'] } }), 'invalid_op', 'a text op past the end')
  await rejects(t, sequencer.submit({ ...base, op: { priority: { set: 9 } } as never }), 'invalid_op', 'priority 9')
  await rejects(t, sequencer.submit({ ...base, op: { color: 'red' } as never }), 'invalid_op', 'an unknown key')
  await rejects(t, sequencer.submit({ ...base, op: { title: ['x'.repeat(1001)] } }), 'invalid_op', 'over the title limit')
  await rejects(t, sequencer.submit({ ...base, op: { projectId: { set: randomUUID() } } }), 'invalid_op', 'a project of no one')
  await rejects(t, sequencer.submit({ ...base, baseRev: 5, op: {} }), 'bad_request', 'baseRev ahead of the task')
  await rejects(t, sequencer.submit({ ...base, baseRev: -1, op: {} }), 'bad_request', 'a negative baseRev')
  await rejects(t, sequencer.submit({ ...base, taskId: randomUUID(), op: { title: ['x'] } }), 'not_found', 'a missing task (never a create)')
  await rejects(t, sequencer.submit({ ...base, principal: principal(randomUUID()), op: { title: ['x'] } }), 'not_found', "another org's task")
  await rejects(t, sequencer.submit({ ...base, principal: principal(orgId, 'viewer'), op: { title: ['x'] } }), 'forbidden', 'a viewer')
  await rejects(t, sequencer.submit({ ...base, principal: principal(orgId), clientId, seq: 9, op: { title: ['x'] } }), 'forbidden', "another device's clientId")
  await rejects(t, sequencer.submit({ ...base, clientId, seq: null, op: {} }), 'bad_request', 'clientId without seq')
  await rejects(t, sequencer.create({ principal: alice, taskId, clientId: null, seq: null, init: {} }), 'already_exists', 'a create of an existing id')
  await rejects(t, sequencer.create({ principal: alice, taskId: randomUUID(), clientId: null, seq: null, init: { status: 'nope' } as never }), 'invalid_op', 'bad initial content')
  await rejects(t, sequencer.create({ principal: alice, taskId: randomUUID(), clientId: null, seq: null, init: 'x' as never }), 'invalid_op', 'content that is no object')
  t.same((await replay(store, orgId, taskId)).revs, [1], 'nothing was committed')
  // A create of an existing id in ANOTHER org is a different task.
  const other = await sequencer.create({ principal: principal(randomUUID()), taskId, clientId: null, seq: null, init: {} })
  t.equal(other.rev, 1)
})

t.test('an op that is identity after transform commits nothing and answers the current rev', async (t) => {
  const taskId = randomUUID()
  const clientId = randomUUID()
  await sequencer.create({ principal: alice, taskId, clientId: null, seq: null, init: { title: 'abc' } })
  await sequencer.submit({ principal: alice, taskId, baseRev: 1, clientId: null, seq: null, op: { title: [{ d: 3 }] } })
  const res = await sequencer.submit({ principal: alice, taskId, baseRev: 1, clientId, seq: 1, op: { title: [1, { d: 1 }] } })
  t.equal(res.rev, 2)
  t.equal(res.event, null)
  t.equal(res.duplicate, false)
  const empty = await sequencer.submit({ principal: alice, taskId, baseRev: 2, clientId: null, seq: null, op: {} })
  t.equal(empty.rev, 2)
  t.same((await replay(store, orgId, taskId)).revs, [1, 2])
  const again = await sequencer.submit({ principal: alice, taskId, baseRev: 1, clientId, seq: 1, op: { title: [1, { d: 1 }] } })
  t.same({ rev: again.rev, duplicate: again.duplicate }, { rev: 2, duplicate: true }, 'its resend is a duplicate')
})

t.test('deletion: a tombstone, then task_deleted for every op', async (t) => {
  const taskId = randomUUID()
  await sequencer.create({ principal: alice, taskId, clientId: null, seq: null, init: { title: 'gone soon', tags: ['x'] } })
  const del = await sequencer.submit({ principal: alice, taskId, baseRev: 1, clientId: null, seq: null, op: { delete: true } })
  t.equal(del.rev, 2)
  t.equal(del.snapshot.deleted, true)
  t.equal(del.snapshot.title, '', 'the tombstone keeps no content')
  t.match(store.tombstone(orgId, 'task', taskId), { kind: 'task', rev: 2 })
  await rejects(t, sequencer.submit({ principal: alice, taskId, baseRev: 2, clientId: null, seq: null, op: { title: ['x'] } }), 'task_deleted', 'an op on a deleted task')
  await rejects(t, sequencer.submit({ principal: alice, taskId, baseRev: 1, clientId: null, seq: null, op: { delete: true } }), 'task_deleted', 'a second delete')
  await rejects(t, sequencer.submit({ principal: alice, taskId, baseRev: 2, clientId: null, seq: null, op: {} }), 'task_deleted', 'even an identity op')
  t.same((await sequencer.snapshot(orgId, taskId))?.deleted, true)
})

t.test('rev_too_old past the replay window and when the log no longer holds the ops', async (t) => {
  const taskId = randomUUID()
  await sequencer.create({ principal: alice, taskId, clientId: null, seq: null, init: {} })
  for (let rev = 1; rev <= 22; rev++) await sequencer.submit({ principal: alice, taskId, baseRev: rev, clientId: null, seq: null, op: { priority: { set: rev % 5 } } })
  await rejects(t, sequencer.submit({ principal: alice, taskId, baseRev: 2, clientId: null, seq: null, op: { title: ['x'] } }), 'rev_too_old', 'more revs behind than the window')
  const ok = await sequencer.submit({ principal: alice, taskId, baseRev: 3, clientId: null, seq: null, op: { title: ['x'] } })
  t.equal(ok.rev, 24, 'within the window it is transformed (ops read back from the log)')
  store.trimOps(orgId, taskId, 20)
  // A fresh instance: this one still holds the last ops in memory, which is fine to use.
  const cold = memoryInstance(t, store, hub, { replayWindow: 20 })
  await rejects(t, cold.sequencer.submit({ principal: alice, taskId, baseRev: 10, clientId: null, seq: null, op: { title: ['y'] } }), 'rev_too_old', 'ops trimmed from the log')
})

t.test('projects: a project of the org may be set; the move is announced with a snapshot', async (t) => {
  const projectId = randomUUID()
  store.addProject(orgId, projectId)
  const notices: CommitNotice[] = []
  const off = sequencer.onCommit((n) => notices.push(n))
  const taskId = randomUUID()
  const created = await sequencer.create({ principal: alice, taskId, projectId, clientId: null, seq: null, init: {} })
  t.equal(created.snapshot.projectId, projectId)
  await sequencer.submit({ principal: alice, taskId, baseRev: 1, clientId: null, seq: null, op: { projectId: { set: null } } })
  off()
  t.equal(notices.length, 2, 'listeners hear every commit, synchronously')
  t.same(notices.map((n) => [n.kind, n.rev, n.projectId]), [['op', 1, projectId], ['op', 2, null]])
  t.equal(notices[1].prevProjectId, projectId)
  t.equal(notices[1].snapshot?.rev, 2)
  t.notOk('prevProjectId' in notices[0])
  await rejects(t, sequencer.create({ principal: principal(randomUUID()), taskId: randomUUID(), projectId, clientId: null, seq: null, init: {} }), 'invalid_op', "another org's project")
})

t.test('commits are published on org:<orgId> and local listeners run before', async (t) => {
  const order: string[] = []
  const received: CommitNotice[] = []
  const unsubscribe = await bus.subscribe(`org:${orgId}`, (payload) => {
    order.push('bus')
    received.push(JSON.parse(payload))
  })
  const off = sequencer.onCommit(() => order.push('local'))
  const taskId = randomUUID()
  const res = await sequencer.create({ principal: alice, taskId, clientId: null, seq: null, init: { title: 'x' } })
  await new Promise((r) => setTimeout(r, 20))
  off()
  await unsubscribe()
  t.same(order, ['local', 'bus'], 'this instance hears its own commit on the bus too, after its listeners')
  t.same(received[0].event, res.event)
  t.equal(received[0].from, bus.instanceId)
})

t.test('storage down answers unavailable; drain refuses new work after finishing begun commits', async (t) => {
  const local = memoryInstance(t, store, hub)
  const taskId = randomUUID()
  await local.sequencer.create({ principal: alice, taskId, clientId: null, seq: null, init: {} })
  const begun = local.sequencer.submit({ principal: alice, taskId, baseRev: 1, clientId: null, seq: null, op: { title: ['a'] } })
  const drained = local.sequencer.drain()
  await rejects(t, local.sequencer.submit({ principal: alice, taskId, baseRev: 1, clientId: null, seq: null, op: { title: ['b'] } }), 'unavailable', 'after drain')
  t.equal((await begun).rev, 2, 'the begun commit finished and was acked')
  await drained
  const down = memoryInstance(t, new MemoryTaskStore(), hub)
  down.store.close()
  await rejects(t, down.sequencer.submit({ principal: alice, taskId, baseRev: 2, clientId: null, seq: null, op: { title: ['c'] } }), 'unavailable', 'database closed')
  await rejects(t, down.sequencer.create({ principal: alice, taskId: randomUUID(), clientId: null, seq: null, init: {} }), 'unavailable', 'create with the database closed')
  t.same((await replay(store, orgId, taskId)).revs, [1, 2])
})
