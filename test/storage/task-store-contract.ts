/**
 * The TaskStore contract: every implementation (PostgreSQL, memory) must pass it.
 * `make` answers a fresh store and a probe reading what the store writes beside
 * its port (history, conflicts, tombstones) and adding projects.
 */
import type { Test } from 'tap'
import { randomUUID } from 'node:crypto'
import { DEFAULT_LIMITS, creationOp, contentFromInit, historyChanges, makeTaskType, type TaskContent, type TaskOp } from '../../src/domain/index.js'
import type { JsonValue } from '../../src/domain/types.js'
import { isUniqueViolation } from '../../src/storage/errors.js'
import type { CommitRow, TaskStore } from '../../src/storage/task-store.js'

export interface StoreProbe {
  addProject(orgId: string, projectId: string): Promise<void>
  history(orgId: string, taskId: string): Promise<{ rev: number; changes: unknown }[]>
  conflicts(orgId: string, taskId: string): Promise<{ field: string; committedValue: JsonValue; incomingValue: JsonValue; committedRev: number; incomingRev: number }[]>
  tombstone(orgId: string, kind: 'task' | 'comment', id: string): Promise<{ rev: number | null } | null>
}

export type MakeStore = (t: Test) => Promise<{ store: TaskStore; probe: StoreProbe }>

const type = makeTaskType(DEFAULT_LIMITS)
const at = (ms = 0) => new Date(Date.UTC(2026, 0, 1) + ms).toISOString()

/** The row of a create, as the sequencer builds it. */
export function createRow(orgId: string, taskId: string, init: object = {}, key: { clientId: string | null; seq: number | null; digest: string | null } = { clientId: null, seq: null, digest: null }): CommitRow {
  const content = contentFromInit(init, DEFAULT_LIMITS)
  const userId = randomUUID()
  const deviceId = randomUUID()
  return {
    orgId, taskId, prevRev: 0, rev: 1, content, clock: { [deviceId]: 1 }, at: at(), userId, deviceId, ...key,
    op: creationOp(content), changes: historyChanges(type.create(), content), conflicts: [], tombstone: false,
  }
}

/** The row of an op on top of `prev` (rev prev.rev + 1). */
export function opRow(prev: CommitRow, op: TaskOp, extra: Partial<CommitRow> = {}): CommitRow {
  const content: TaskContent = type.apply(prev.content, op)
  return {
    ...prev, prevRev: prev.rev, rev: prev.rev + 1, content, clock: { ...prev.clock, [prev.deviceId]: prev.rev + 1 }, at: at(prev.rev),
    clientId: null, seq: null, digest: null, op, changes: historyChanges(prev.content, content), conflicts: [], tombstone: op.delete === true, ...extra,
  }
}

export function taskStoreContract(t: Test, make: MakeStore): void {
  t.test('a create is written whole, once; its id and its (clientId, seq) are not reused', async (t) => {
    const { store, probe } = await make(t)
    const orgId = randomUUID()
    const taskId = randomUUID()
    const clientId = randomUUID()
    t.equal(await store.loadTask(orgId, taskId), null, 'nothing before')
    const row = createRow(orgId, taskId, { title: 'first', tags: ['b', 'a'] }, { clientId, seq: 1, digest: 'digest-of-the-create' })
    t.same(await store.commitCreate(row), { kind: 'committed' })
    const snap = await store.loadTask(orgId, taskId)
    t.same(snap, { ...row.content, id: taskId, rev: 1, clock: row.clock, createdAt: row.at, updatedAt: row.at, updatedBy: row.userId }, 'the snapshot')
    t.same(Object.keys(snap!).slice(0, 4), ['id', 'projectId', 'rev', 'title'], 'in the contract field order')
    t.same(await store.loadOps(orgId, taskId, 1, 10), [{ rev: 1, op: row.op, userId: row.userId, deviceId: row.deviceId, clientId, seq: 1, at: row.at }])
    t.same((await probe.history(orgId, taskId)).map((h) => h.rev), [1])
    const record = { clientId, seq: 1, orgId, kind: 'create', taskId, rev: 1, commentId: null, digest: 'digest-of-the-create' }
    t.same(await store.findMutation(orgId, clientId, 1), record, 'the record keeps the digest')
    t.same(await store.commitCreate(createRow(orgId, taskId)), { kind: 'lost' }, 'an existing id is not written again')
    const other = randomUUID()
    const resend = await store.commitCreate(createRow(orgId, other, {}, { clientId, seq: 1, digest: 'another digest' }))
    t.same(resend, { kind: 'duplicate', record }, 'a recorded (clientId, seq) answers its record, with the digest recorded first')
    t.equal(await store.loadTask(orgId, other), null, 'and writes nothing')
    t.equal(await store.loadTask(randomUUID(), taskId), null, 'another org does not see it')
    const otherOrg = randomUUID()
    t.same(await store.commitCreate(createRow(otherOrg, randomUUID(), {}, { clientId, seq: 1, digest: 'x' })), { kind: 'committed' }, "another org's (clientId, seq) is its own")
    t.same(await store.commitCreate(createRow(randomUUID(), taskId)), { kind: 'committed' }, 'the same id in another org is another task')
  })

  t.test('loadTasks: the tasks of the org among the ids, in one read; absent and foreign ids left out', async (t) => {
    const { store } = await make(t)
    const orgId = randomUUID()
    const [a, b] = [randomUUID(), randomUUID()]
    for (const id of [a, b]) t.same(await store.commitCreate(createRow(orgId, id, { title: id })), { kind: 'committed' })
    const foreign = randomUUID()
    t.same(await store.commitCreate(createRow(randomUUID(), foreign)), { kind: 'committed' })
    t.same(await store.loadTasks(orgId, []), [], 'no ids, no read')
    const found = await store.loadTasks(orgId, [b, randomUUID(), a, foreign, a])
    t.same(found.map((s) => s.id).sort(), [a, b].sort(), 'each of the org once')
    for (const s of found) t.same(s, await store.loadTask(orgId, s.id), 'the same snapshot as a single read')
  })

  t.test('commitOps: one outcome per row, in order; a stale row or a recorded (clientId, seq) writes nothing', async (t) => {
    const { store, probe } = await make(t)
    const orgId = randomUUID()
    const [a, b, c] = [createRow(orgId, randomUUID(), { title: 'a' }), createRow(orgId, randomUUID(), { title: 'b' }), createRow(orgId, randomUUID())]
    for (const row of [a, b, c]) await store.commitCreate(row)
    const clientId = randomUUID()
    const a2 = opRow(a, { title: [1, '!'] }, { clientId, seq: 7, digest: 'digest-a2' })
    const b2 = opRow(b, { priority: { set: 3 } })
    t.same(await store.commitOps([a2, b2]), [{ kind: 'committed' }, { kind: 'committed' }])
    t.equal((await store.loadTask(orgId, a.taskId))?.title, 'a!')
    t.equal((await store.loadTask(orgId, b.taskId))?.rev, 2)
    const staleB = opRow(b, { title: ['x'] })
    const dupC = opRow(c, { title: ['y'] }, { clientId, seq: 7, digest: 'digest-dupC' })
    const c2 = opRow(c, { title: ['z'] })
    const outcomes = await store.commitOps([staleB, dupC])
    t.same(outcomes[0], { kind: 'lost' }, 'a row whose rev moved on')
    t.same(outcomes[1], { kind: 'duplicate', record: { clientId, seq: 7, orgId, kind: 'op', taskId: a.taskId, rev: 2, commentId: null, digest: 'digest-a2' } }, 'the digest of the mutation recorded, not of the refused row')
    t.same((await store.loadTask(orgId, b.taskId))?.title, 'b', 'nothing of the stale row')
    t.same((await store.loadOps(orgId, c.taskId, 1, 10)).map((o) => o.rev), [1], 'nothing of the duplicate')
    t.same(await store.commitOps([c2]), [{ kind: 'committed' }])
    t.same((await probe.history(orgId, a.taskId)).map((h) => [h.rev, h.changes]), [[1, a.changes], [2, { title: { from: 'a', to: 'a!' } }]])
  })

  t.test('commitOps: a chain of one task\'s consecutive revs is written whole, or nothing of it', async (t) => {
    const { store, probe } = await make(t)
    const orgId = randomUUID()
    const [a, b] = [createRow(orgId, randomUUID(), { title: 'a' }), createRow(orgId, randomUUID(), { title: 'b' })]
    for (const row of [a, b]) await store.commitCreate(row)
    const clientId = randomUUID()
    const a2 = opRow(a, { title: [1, '1'] }, { clientId, seq: 1, digest: 'd1' })
    const a3 = opRow(a2, { title: [2, '2'] }, { clientId, seq: 2, digest: 'd2' })
    const a4 = opRow(a3, { priority: { set: 4 } })
    const b2 = opRow(b, { title: [1, '!'] })
    t.same(await store.commitOps([a2, a3, a4, b2]), Array(4).fill({ kind: 'committed' }), 'the chain and a row of another task beside it')
    t.match(await store.loadTask(orgId, a.taskId), { rev: 4, title: 'a12', priority: 4, clock: a4.clock, updatedAt: a4.at }, 'the snapshot at the last rev')
    t.equal((await store.loadTask(orgId, b.taskId))?.title, 'b!')
    t.same((await store.loadOps(orgId, a.taskId, 2, 10)).map((o) => [o.rev, o.op, o.seq]), [[2, a2.op, 1], [3, a3.op, 2], [4, a4.op, null]], 'every rev its op')
    t.same((await probe.history(orgId, a.taskId)).map((h) => [h.rev, h.changes]), [[1, a.changes], [2, a2.changes], [3, a3.changes], [4, a4.changes]], 'and its history')
    t.match(await store.findMutation(orgId, clientId, 2), { rev: 3, digest: 'd2' }, 'and its mutation record')

    // A chain with a recorded (clientId, seq) inside: nothing of it is written.
    const a5 = opRow(a4, { title: ['x'] }, { clientId, seq: 3, digest: 'd3' })
    const a6 = opRow(a5, { title: ['y'] }, { clientId, seq: 2, digest: 'd2-again' })
    const a7 = opRow(a6, { priority: { set: 1 } })
    const outcomes = await store.commitOps([a5, a6, a7])
    t.same(outcomes[0], { kind: 'lost' }, 'the rows around the duplicate are not written')
    t.match(outcomes[1], { kind: 'duplicate', record: { seq: 2, rev: 3, digest: 'd2' } }, 'the duplicate is reported as such')
    t.same(outcomes[2], { kind: 'lost' })
    t.equal((await store.loadTask(orgId, a.taskId))?.rev, 4, 'the task did not move')
    t.same((await store.loadOps(orgId, a.taskId, 5, 10)), [], 'no op written')
    t.equal(await store.findMutation(orgId, clientId, 3), null, 'no record of the rows before the duplicate')

    // A chain whose first rev is stale: nothing of it is written.
    const stale2 = opRow(a, { title: ['s'] })
    const stale3 = opRow(stale2, { title: ['t'] })
    t.same(await store.commitOps([stale2, stale3]), [{ kind: 'lost' }, { kind: 'lost' }])
    t.equal((await store.loadTask(orgId, a.taskId))?.title, 'a12')
    t.same(await store.commitOps([a5, opRow(a5, { priority: { set: 1 } })]), [{ kind: 'committed' }, { kind: 'committed' }], 'the chain again without the duplicate')
    t.equal((await store.loadTask(orgId, a.taskId))?.rev, 6)
  })

  t.test('loadOps: rev order from a rev, at most limit', async (t) => {
    const { store } = await make(t)
    const orgId = randomUUID()
    let row = createRow(orgId, randomUUID())
    await store.commitCreate(row)
    for (let i = 0; i < 5; i++) {
      row = opRow(row, { priority: { set: i % 5 } })
      await store.commitOps([row])
    }
    t.same((await store.loadOps(orgId, row.taskId, 3, 2)).map((o) => o.rev), [3, 4])
    t.same((await store.loadOps(orgId, row.taskId, 5, 10)).map((o) => o.rev), [5, 6])
    t.same(await store.loadOps(orgId, row.taskId, 7, 10), [])
  })

  t.test('conflicts and the tombstone are written beside their commit', async (t) => {
    const { store, probe } = await make(t)
    const orgId = randomUUID()
    const row = createRow(orgId, randomUUID())
    await store.commitCreate(row)
    const conflict = { id: randomUUID(), field: 'status' as const, committed: 'done', incoming: 'cancelled', committedRev: 1 }
    const r2 = opRow(row, { status: { set: 'cancelled' } }, { conflicts: [conflict] })
    await store.commitOps([r2])
    t.same(await probe.conflicts(orgId, row.taskId), [{ field: 'status', committedValue: 'done', incomingValue: 'cancelled', committedRev: 1, incomingRev: 2 }])
    t.equal(await probe.tombstone(orgId, 'task', row.taskId), null)
    await store.commitOps([opRow(r2, { delete: true })])
    t.match(await probe.tombstone(orgId, 'task', row.taskId), { rev: 3 })
    t.equal((await store.loadTask(orgId, row.taskId))?.deleted, true)
  })

  t.test('clients, mutation records and projects', async (t) => {
    const { store, probe } = await make(t)
    const orgId = randomUUID()
    const clientId = randomUUID()
    const mine = { orgId, userId: randomUUID(), deviceId: randomUUID() }
    t.same(await store.claimClient(clientId, mine), mine, 'the first claim binds')
    t.same(await store.claimClient(clientId, { ...mine, deviceId: randomUUID() }), mine, 'a later claim answers the binding that holds')
    const record = { clientId, seq: 3, orgId, kind: 'op' as const, taskId: randomUUID(), rev: 4, commentId: null, digest: 'digest-3' }
    t.equal(await store.findMutation(orgId, clientId, 3), null)
    t.equal(await store.recordMutation(record), true)
    t.equal(await store.recordMutation({ ...record, rev: 5, digest: 'another' }), false, 'recorded once')
    t.same(await store.findMutation(orgId, clientId, 3), record, 'the first record, its digest included')
    const old = { ...record, seq: 4, digest: null }
    t.equal(await store.recordMutation(old), true)
    t.same(await store.findMutation(orgId, clientId, 4), old, 'a record without a digest (written before digests were kept)')
    const elsewhere = { orgId: randomUUID(), userId: randomUUID(), deviceId: randomUUID() }
    t.same(await store.claimClient(clientId, elsewhere), elsewhere, 'in another organization the same clientId is another client')
    t.equal(await store.findMutation(elsewhere.orgId, clientId, 3), null, "and has none of this organization's records")
    t.equal(await store.recordMutation({ ...record, orgId: elsewhere.orgId, digest: 'theirs' }), true, 'its seq 3 is its own')
    t.same(await store.findMutation(orgId, clientId, 3), record, 'ours unchanged')
    const projectId = randomUUID()
    t.equal(await store.projectExists(orgId, projectId), false)
    await probe.addProject(orgId, projectId)
    t.equal(await store.projectExists(orgId, projectId), true)
    t.equal(await store.projectExists(randomUUID(), projectId), false, "another org's")
  })

  t.test('a locked task: reads and a commit under the lock; another commit of it waits, then finds it moved on', async (t) => {
    const { store } = await make(t)
    const orgId = randomUUID()
    const row = createRow(orgId, randomUUID(), { title: 'x' })
    await store.commitCreate(row)
    const r2 = opRow(row, { title: [1, 'y'] })
    let racing: Promise<unknown> | undefined
    const inside = await store.withTaskLocked(orgId, row.taskId, async (locked) => {
      t.equal(locked.snapshot?.rev, 1)
      t.same((await locked.loadOps(1, 10)).map((o) => o.rev), [1])
      racing = store.commitOps([opRow(row, { title: ['z'] })])
      return locked.commit(r2)
    })
    t.same(inside, { kind: 'committed' })
    t.same(await racing, [{ kind: 'lost' }], 'the racing commit waited for the lock and lost')
    t.equal((await store.loadTask(orgId, row.taskId))?.title, 'xy')
    t.equal(await store.withTaskLocked(orgId, randomUUID(), async (locked) => locked.snapshot), null, 'a missing task')
  })

  t.test('comments: insert, edit, delete to a tombstone; a recorded (clientId, seq) is refused by its key', async (t) => {
    const { store, probe } = await make(t)
    const orgId = randomUUID()
    const taskId = randomUUID()
    await store.commitCreate(createRow(orgId, taskId))
    const id = randomUUID()
    const authorId = randomUUID()
    const clientId = randomUUID()
    const created = await store.insertComment({ orgId, id, taskId, parentId: null, authorId, body: 'hello', at: at() }, { clientId, seq: 1, digest: 'digest-comment' })
    t.same(created, { id, taskId, parentId: null, authorId, body: 'hello', createdAt: at(), editedAt: null, editCount: 0, deleted: false })
    t.same(await store.loadComment(orgId, id), created)
    t.equal(await store.loadComment(randomUUID(), id), null, 'another org does not see it')
    t.equal(await store.insertComment({ orgId, id, taskId, parentId: null, authorId, body: 'again', at: at() }, { clientId: null, seq: null, digest: null }), null, 'an id taken')
    t.match(await store.findMutation(orgId, clientId, 1), { kind: 'comment', commentId: id, taskId, digest: 'digest-comment' })
    const edited = await store.editComment(orgId, id, 'hello again', at(1000), { clientId: null, seq: null, digest: null })
    t.match(edited, { body: 'hello again', editedAt: at(1000), editCount: 1, deleted: false })
    const other = randomUUID()
    try {
      await store.insertComment({ orgId, id: other, taskId, parentId: null, authorId, body: 'x', at: at() }, { clientId, seq: 1, digest: 'another' })
      t.fail('a recorded (clientId, seq) must be refused')
    } catch (err) {
      t.ok(isUniqueViolation(err), 'refused on the mutation key, as a racing resend is')
    }
    t.equal(await store.loadComment(orgId, other), null, 'and nothing written')
    const deleted = await store.deleteComment(orgId, id, at(2000), { clientId: null, seq: null, digest: null })
    t.match(deleted, { body: '', deleted: true })
    t.ok(await probe.tombstone(orgId, 'comment', id), 'its tombstone')
    t.equal(await store.editComment(orgId, id, 'late', at(3000), { clientId: null, seq: null, digest: null }), null, 'a deleted comment is not edited')
    t.equal(await store.deleteComment(orgId, id, at(3000), { clientId: null, seq: null, digest: null }), null, 'nor deleted twice')
  })
}
