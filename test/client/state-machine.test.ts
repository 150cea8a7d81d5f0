/**
 * The client's OT state machine against a scripted server: each test plays one
 * tricky order of messages by hand and checks the client ends where the server is.
 */
import t from 'tap'
import { taskType } from '../../src/domain/index.js'
import type { TaskContent, TaskOp } from '../../src/domain/types.js'
import type { ChangeEvent, ConflictEvent, TaskHandle } from '../../src/client/index.js'
import { nextSent, settle, waitFor } from './fake-socket.js'
import { OTHER_CLIENT, TASK, openTask, remoteOp, setup, snapshot } from './setup.js'

const content = (task: TaskHandle): TaskContent => {
  const { id, rev, clock, createdAt, updatedAt, updatedBy, ...c } = task.snapshot
  void id, rev, clock, createdAt, updatedAt, updatedBy
  return c
}

t.test('ack after a remote op: both orders of the transform agree with the server', async (t) => {
  const s = await setup(t)
  const task = await openTask(s, 5, { title: 'hello' })
  const start = content(task)
  const changes: ChangeEvent[] = []
  task.on('change', (e) => changes.push(e))
  const mine: TaskOp = { title: [5, '!'] }
  task.submit(mine)
  t.equal(task.snapshot.title, 'hello!', 'applied locally at once')
  t.equal(task.pending, 1)
  const sent = await nextSent(s.sock, 'op')
  t.same([sent.baseRev, sent.op], [5, mine], 'sent against rev 5')

  const theirs: TaskOp = { title: ['>> '] }
  s.sock.receive(remoteOp(6, theirs))
  t.equal(task.rev, 6)
  t.equal(task.snapshot.title, '>> hello!')
  t.equal(task.pending, 1, 'still in flight')

  const acks: unknown[] = []
  task.on('ack', (e) => acks.push(e))
  s.sock.receive({ type: 'ack', taskId: TASK, seq: sent.seq, rev: 7 })
  t.equal(task.rev, 7)
  t.equal(task.pending, 0)
  t.same(acks, [{ seq: sent.seq, rev: 7, noop: false, count: 1 }], 'an ack event')
  // What the server computed: theirs committed first, ours transformed 'left' against it.
  const server = taskType.apply(taskType.apply(start, theirs), taskType.transform(mine, theirs, 'left'))
  t.same(content(task), server, 'equal to the server snapshot')
  t.same(
    changes.map((c) => c.local),
    [true, false],
    'one local and one remote change event',
  )
})

t.test('an ack ahead of a missing op is held until the op arrives', async (t) => {
  const s = await setup(t)
  const task = await openTask(s, 5, { title: 'abc' })
  task.submit({ title: [3, 'd'] })
  const sent = await nextSent(s.sock, 'op')
  s.sock.receive({ type: 'ack', taskId: TASK, seq: sent.seq, rev: 7 })
  t.equal(task.rev, 5, 'not applied before rev 6')
  t.equal(task.pending, 1)
  s.sock.receive(remoteOp(6, { title: ['x'] }))
  t.equal(task.rev, 7, 'rev 6 then our ack at 7')
  t.equal(task.pending, 0)
  t.equal(task.snapshot.title, 'xabcd')
})

t.test('later local ops are composed into one pending op, sent after the ack', async (t) => {
  const s = await setup(t)
  const task = await openTask(s, 5, { title: '' })
  task.submit({ title: ['a'] })
  const first = await nextSent(s.sock, 'op')
  task.submit({ title: [1, 'b'] })
  task.submit({ priority: { set: 2 } })
  task.submit({ title: [2, 'c'] })
  t.equal(task.pending, 4)
  await settle()
  t.same(s.sock.take('op'), [], 'nothing more sent while one op is in flight')
  s.sock.receive(remoteOp(6, { tags: { add: ['x'] } }))
  s.sock.receive({ type: 'ack', taskId: TASK, seq: first.seq, rev: 7 })
  t.equal(task.pending, 3)
  const second = await nextSent(s.sock, 'op')
  t.equal(second.baseRev, 7)
  t.ok(second.seq > first.seq, 'a new, higher seq')
  t.same(second.op, { title: [1, 'bc'], priority: { set: 2 } }, 'the three ops composed')
  s.sock.receive({ type: 'ack', taskId: TASK, seq: second.seq, rev: 8 })
  t.equal(task.pending, 0)
  t.same([task.snapshot.title, task.snapshot.priority, task.snapshot.tags], ['abc', 2, ['x']])
})

t.test('reconnect with an op in flight: resume with since, replayed op transformed, same seq resent after subscribed', async (t) => {
  const s = await setup(t)
  const task = await openTask(s, 5, { title: 'hello' })
  const start = content(task)
  const mine: TaskOp = { title: ['A '] }
  task.submit(mine)
  const sent = await nextSent(s.sock, 'op')
  s.sock.drop(1012)
  await waitFor(() => s.client.status !== 'online', 'offline')
  t.equal(task.snapshot.title, 'A hello', 'local change kept while offline')

  const sock = await s.nextSocket()
  const sub = await nextSent(sock, 'subscribe')
  t.same(sub.since, { [TASK]: 5 }, 'resumes from the last confirmed rev')
  await settle()
  t.same(sock.take('op'), [], 'the op waits for the replay to end')
  const theirs: TaskOp = { title: [5, ' world'] }
  sock.receive(remoteOp(6, theirs))
  sock.receive({ type: 'subscribed', taskIds: [TASK], projectIds: [], all: false })
  const resent = await nextSent(sock, 'op')
  t.equal(resent.seq, sent.seq, 'the same seq: the server dedups it')
  t.equal(resent.baseRev, 6)
  t.same(resent.op, taskType.transform(mine, theirs, 'left'), 'transformed past the replayed op')
  sock.receive({ type: 'ack', taskId: TASK, seq: sent.seq, rev: 7 })
  t.same(content(task), taskType.apply(taskType.apply(start, theirs), taskType.transform(mine, theirs, 'left')))
  t.equal(task.pending, 0)
  await waitFor(() => s.client.status === 'online', 'online')
})

t.test('reconnect after our op committed unacked: the replayed own op is the ack; a duplicate ack changes nothing', async (t) => {
  const s = await setup(t)
  const task = await openTask(s, 5, { title: 'hello' })
  const a: TaskOp = { title: [5, ' A'] }
  task.submit(a)
  const sentA = await nextSent(s.sock, 'op')
  task.submit({ title: [7, ' B'] })
  s.sock.drop()

  const sock = await s.nextSocket()
  await nextSent(sock, 'subscribe')
  sock.receive(remoteOp(6, a, s.client.clientId, sentA.seq))
  t.equal(task.rev, 6, 'own op taken as committed')
  t.equal(task.pending, 1, 'only B is left')
  sock.receive({ type: 'subscribed', taskIds: [TASK], projectIds: [], all: false })
  const sentB = await nextSent(sock, 'op')
  t.not(sentB.seq, sentA.seq, 'A is not sent again')
  t.same([sentB.baseRev, sentB.op], [6, { title: [7, ' B'] }])
  // A stray duplicate ack of A (e.g. from a resend that crossed the replay) is ignored.
  sock.receive({ type: 'ack', taskId: TASK, seq: sentA.seq, rev: 6 })
  t.equal(task.pending, 1)
  sock.receive({ type: 'ack', taskId: TASK, seq: sentB.seq, rev: 7 })
  t.equal(task.snapshot.title, 'hello A B', 'A applied exactly once')
  t.equal(task.rev, 7)
  t.equal(task.pending, 0)
})

t.test('rejection of the in-flight op rolls it back, keeps later ops, emits conflict', async (t) => {
  const s = await setup(t)
  const task = await openTask(s, 5, { title: 'hello' })
  const conflicts: ConflictEvent[] = []
  task.on('conflict', (e) => conflicts.push(e))
  task.submit({ title: [5, ' world'] })
  const sent = await nextSent(s.sock, 'op')
  task.submit({ title: [11, '!'], status: { set: 'done' } })
  t.equal(task.snapshot.title, 'hello world!')
  s.sock.receive({ type: 'error', code: 'invalid_op', message: 'title: too long', ref: TASK, seq: sent.seq })
  t.equal(conflicts.length, 1)
  t.match(conflicts[0], { kind: 'rejected', code: 'invalid_op', op: { title: [5, ' world'] } })
  t.equal(task.snapshot.title, 'hello!', 'the rejected insert is gone, the later one kept')
  t.equal(task.snapshot.status, 'done')
  const next = await nextSent(s.sock, 'op')
  t.same([next.baseRev, next.op], [5, { title: [5, '!'], status: { set: 'done' } }])
  t.ok(next.seq > sent.seq)
  s.sock.receive({ type: 'ack', taskId: TASK, seq: next.seq, rev: 6 })
  t.equal(task.pending, 0)
})

t.test('task_deleted for the in-flight op: rolled back, then the delete arrives', async (t) => {
  const s = await setup(t)
  const task = await openTask(s, 5, { title: 'hello' })
  const conflicts: ConflictEvent[] = []
  let deleted = 0
  task.on('conflict', (e) => conflicts.push(e))
  task.on('deleted', () => deleted++)
  task.submit({ title: [5, '?'] })
  const sent = await nextSent(s.sock, 'op')
  s.sock.receive({ type: 'error', code: 'task_deleted', message: 'deleted', ref: TASK, seq: sent.seq })
  t.match(conflicts, [{ kind: 'rejected', code: 'task_deleted' }])
  t.equal(task.snapshot.title, 'hello')
  s.sock.receive(remoteOp(6, { delete: true }))
  t.equal(deleted, 1)
  t.equal(task.deleted, true)
  t.throws(() => task.submit({ title: ['x'] }), { code: 'task_deleted' })
})

t.test('transient errors resend the same seq; nothing is retried forever', async (t) => {
  const s = await setup(t)
  const task = await openTask(s, 5)
  task.submit({ priority: { set: 3 } })
  const sent = await nextSent(s.sock, 'op')
  s.sock.receive({ type: 'error', code: 'unavailable', message: 'storage down', ref: TASK, seq: sent.seq })
  const again = await nextSent(s.sock, 'op')
  t.equal(again.seq, sent.seq, 'retried with the same seq')
  const conflicts: ConflictEvent[] = []
  task.on('conflict', (e) => conflicts.push(e))
  for (let i = 0; i < 20 && conflicts.length === 0; i++) {
    s.sock.receive({ type: 'error', code: 'unavailable', message: 'storage down', ref: TASK, seq: sent.seq })
    if (conflicts.length === 0) await nextSent(s.sock, 'op', 20_000)
  }
  t.match(conflicts, [{ kind: 'rejected', code: 'unavailable' }], 'given up after a bounded number of tries')
  t.equal(task.pending, 0)
  t.equal(task.snapshot.priority, 0, 'rolled back')
})

t.test('an op transformed to nothing is acked at the current rev and dropped', async (t) => {
  const s = await setup(t)
  const task = await openTask(s, 5)
  task.submit({ priority: { set: 1 } })
  const sent = await nextSent(s.sock, 'op')
  s.sock.receive(remoteOp(6, { priority: { set: 3 } }))
  t.equal(task.snapshot.priority, 3, 'higher wins')
  s.sock.receive({ type: 'ack', taskId: TASK, seq: sent.seq, rev: 6 })
  t.equal(task.rev, 6)
  t.equal(task.pending, 0)
  t.equal(task.snapshot.priority, 3)
})

t.test('a noop ack read as a commit is repaired when the real op of that rev shows up', async (t) => {
  const server = snapshot(6, { priority: 3 })
  const s = await setup(t, {
    fetch: (method, path) => {
      if (path === `/api/tasks/${TASK}`) return { status: 200, body: server }
      if (path.startsWith(`/api/tasks/${TASK}/ops`)) return { status: 200, body: { ops: [], hasMore: false } }
      return undefined
    },
  })
  const task = await openTask(s, 5)
  task.submit({ priority: { set: 1 } })
  const sent = await nextSent(s.sock, 'op')
  // The ack (current rev 6, nothing committed) overtakes the op that made ours a no-op.
  s.sock.receive({ type: 'ack', taskId: TASK, seq: sent.seq, rev: 6 })
  t.equal(task.snapshot.priority, 1, 'indistinguishable from a commit at 6 for now')
  s.sock.receive(remoteOp(6, { priority: { set: 3 } }))
  await waitFor(() => task.snapshot.priority === 3, 'reload from the server snapshot')
  t.equal(task.rev, 6)
  t.ok(s.calls.includes(`GET /api/tasks/${TASK}`), 'snapshot read over REST')
})

t.test('an ack flagged noop ahead of our rev waits for the ops that dropped it', async (t) => {
  const s = await setup(t)
  const task = await openTask(s, 5)
  task.submit({ priority: { set: 1 } })
  const sent = await nextSent(s.sock, 'op')
  s.sock.receive({ type: 'ack', taskId: TASK, seq: sent.seq, rev: 6, noop: true })
  t.equal(task.pending, 1)
  s.sock.receive(remoteOp(6, { priority: { set: 4 } }))
  t.equal(task.pending, 0)
  t.equal(task.rev, 6)
  t.equal(task.snapshot.priority, 4)
})

t.test('a snapshot on resume with local changes: caught up exactly from the op log', async (t) => {
  const mine: TaskOp = { title: ['1 '] }
  let ops: unknown[] = []
  const s = await setup(t, {
    fetch: (method, path) => (path.startsWith(`/api/tasks/${TASK}/ops?from=6`) ? { status: 200, body: { ops, hasMore: false } } : undefined),
  })
  const task = await openTask(s, 5, { title: 'x' })
  task.submit(mine)
  const sent = await nextSent(s.sock, 'op')
  task.submit({ title: [3, '2'] })
  s.sock.drop()
  const sock = await s.nextSocket()
  await nextSent(sock, 'subscribe')
  // Our op committed at 7 after someone else's at 6; the server answers a snapshot (past its replay window).
  const theirs: TaskOp = { title: [1, '!'] }
  ops = [remoteOp(6, theirs), remoteOp(7, taskType.transform(mine, theirs, 'left'), s.client.clientId, sent.seq)]
  sock.receive({ type: 'snapshot', taskId: TASK, rev: 7, task: snapshot(7, { title: '1 x!' }) })
  sock.receive({ type: 'subscribed', taskIds: [TASK], projectIds: [], all: false })
  await waitFor(() => task.rev === 7, 'caught up from the log')
  t.equal(task.snapshot.title, '1 x2!', 'own op applied once, pending rebased')
  const next = await nextSent(sock, 'op')
  t.same([next.baseRev, next.op], [7, { title: [3, '2'] }])
  t.ok(next.seq > sent.seq)
})

t.test('presence: sent once subscribed and again after a reconnect; others shown, own echo ignored', async (t) => {
  const s = await setup(t)
  const task = await openTask(s, 5)
  task.setPresence({ field: 'title', cursor: 3 })
  t.same(s.sock.take('presence'), [{ type: 'presence', taskId: TASK, state: { field: 'title', cursor: 3 } }])
  const seen: unknown[] = []
  task.on('presence', (p) => seen.push(p))
  s.sock.receive({ type: 'presence', taskId: TASK, userId: 'u2', clientId: OTHER_CLIENT, state: { typing: true } })
  s.sock.receive({ type: 'presence', taskId: TASK, userId: 'u1', clientId: s.client.clientId, state: { typing: true } })
  t.same(seen, [{ clientId: OTHER_CLIENT, userId: 'u2', state: { typing: true } }])
  t.equal(task.presence.size, 1)
  s.sock.drop()
  t.equal(task.presence.size, 0, 'others forgotten when the connection drops')
  const sock = await s.nextSocket()
  await nextSent(sock, 'subscribe')
  sock.receive({ type: 'subscribed', taskIds: [TASK], projectIds: [], all: false })
  t.same(sock.take('presence'), [{ type: 'presence', taskId: TASK, state: { field: 'title', cursor: 3 } }], 'resent')
  await new Promise((r) => setTimeout(r, 120))
  for (let cursor = 4; cursor < 10; cursor++) task.setPresence({ field: 'title', cursor })
  t.same(sock.take('presence').map((m) => m.state), [{ field: 'title', cursor: 4 }], 'typing fast: the first at once')
  const last = await nextSent(sock, 'presence')
  t.same(last.state, { field: 'title', cursor: 9 }, 'then only the latest, a moment later')
})

t.test('ops already applied are dropped; early ops wait for the gap to fill', async (t) => {
  const s = await setup(t)
  const task = await openTask(s, 5, { title: '' })
  s.sock.receive(remoteOp(5, { title: ['old'] }))
  t.equal(task.snapshot.title, '', 'rev 5 already in the snapshot')
  s.sock.receive(remoteOp(7, { title: [1, 'b'] }))
  t.equal(task.rev, 5, 'rev 7 waits for rev 6')
  s.sock.receive(remoteOp(6, { title: ['a'] }))
  t.equal(task.rev, 7)
  t.equal(task.snapshot.title, 'ab')
})

t.test('rev_too_old: caught up from the op log, then sent again under the same seq', async (t) => {
  const theirs: TaskOp = { title: ['>'] }
  const s = await setup(t, {
    fetch: (method, path) => (path === `/api/tasks/${TASK}/ops?from=6` ? { status: 200, body: { ops: [remoteOp(6, theirs)], hasMore: false } } : undefined),
  })
  const task = await openTask(s, 5, { title: 'ab' })
  const mine: TaskOp = { title: [2, 'c'] }
  task.submit(mine)
  const sent = await nextSent(s.sock, 'op')
  s.sock.receive({ type: 'error', code: 'rev_too_old', message: 'rebase', ref: TASK, seq: sent.seq })
  const again = await nextSent(s.sock, 'op')
  t.equal(again.seq, sent.seq, 'the same seq: if another attempt of it committed, the server answers that one')
  t.same([again.baseRev, again.op], [6, taskType.transform(mine, theirs, 'left')])
  s.sock.receive({ type: 'ack', taskId: TASK, seq: again.seq, rev: 7 })
  t.same([task.rev, task.pending, task.snapshot.title], [7, 0, '>abc'])
})

t.test('custom fields changed in place by received ops: no snapshot handed out and nothing stored ever changes', async (t) => {
  const s = await setup(t)
  const task = await openTask(s, 5, { title: 'x', customFields: { a: 1, b: 2, c: 3 } })
  // An op in flight: the view and the confirmed copy differ from here on.
  task.submit({ customFields: { c: { set: 30 } } })
  const sent = await nextSent(s.sock, 'op')
  const received: TaskContent[] = []
  const snaps = [task.snapshot]
  for (let rev = 6; rev <= 12; rev++) {
    // The first makes the task's own copies; the later ones set keys those copies already have.
    s.sock.receive(remoteOp(rev, { customFields: { a: { set: rev }, b: { set: rev * 10 } } }))
    if (rev % 3 === 0) snaps.push(task.snapshot)
    received.push(structuredClone(content(task)))
  }
  t.same(snaps[0].customFields, { a: 1, b: 2, c: 30 }, 'the snapshot taken before the ops is as it was')
  t.same(snaps[1].customFields, { a: 6, b: 60, c: 30 }, 'each snapshot keeps the values it was taken with')
  t.same(snaps[2].customFields, { a: 9, b: 90, c: 30 })
  t.same(snaps[3].customFields, { a: 12, b: 120, c: 30 })
  t.same(received.map((c) => c.customFields.a), [6, 7, 8, 9, 10, 11, 12], 'every op applied')
  // A key that is new (over the old object's keys) and an unset, then the ack.
  s.sock.receive(remoteOp(13, { customFields: { d: { set: 4 }, a: { unset: true } } }))
  const before13 = task.snapshot
  s.sock.receive(remoteOp(14, { customFields: { b: { unset: true } } }))
  t.same(before13.customFields, { b: 120, c: 30, d: 4 }, 'an unset in place does not reach a snapshot handed out')
  s.sock.receive({ type: 'ack', taskId: TASK, seq: sent.seq, rev: 15 })
  t.same(content(task).customFields, { c: 30, d: 4 })
  t.equal(task.rev, 15)
  // The server's copy: every op in order.
  let server: TaskContent = { ...taskType.create(), title: 'x', customFields: { a: 1, b: 2, c: 3 } }
  for (let rev = 6; rev <= 12; rev++) server = taskType.apply(server, { customFields: { a: { set: rev }, b: { set: rev * 10 } } })
  server = taskType.apply(server, { customFields: { d: { set: 4 }, a: { unset: true } } })
  server = taskType.apply(server, { customFields: { b: { unset: true } } })
  server = taskType.apply(server, { customFields: { c: { set: 30 } } } as TaskOp)
  t.same(content(task), server, 'where the server is')
})
