/**
 * sync_required: the offline queue is pushed over REST, changes pulled, and the
 * task caught up exactly from its op log; without those endpoints the socket
 * resumes instead.
 */
import t from 'tap'
import { taskType } from '../../src/domain/index.js'
import type { TaskOp } from '../../src/domain/types.js'
import { nextSent, waitFor } from './fake-socket.js'
import { TASK, openTask, remoteOp, setup, snapshot } from './setup.js'

t.test('sync_required: push, pull, then the op log; the pushed op is recognised in the log', async (t) => {
  const mine: TaskOp = { title: [5, ' A'] }
  let pushed: unknown = null
  let clientId = ''
  let seqA = 0
  const theirs6: TaskOp = { title: ['1'] }
  const theirs7: TaskOp = { priority: { set: 4 } }
  const s = await setup(t, {
    fetch: (method, path, body) => {
      if (path === '/api/sync/push') {
        pushed = body
        return { status: 200, body: { results: [{ seq: seqA, status: 'applied', rev: 8 }] } }
      }
      if (path.startsWith('/api/sync/pull')) return { status: 200, body: { tasks: [], comments: [], tombstones: [], cursor: 'c1', hasMore: false, lastSeq: {} } }
      if (path === `/api/tasks/${TASK}/ops?from=6`) {
        const committed = taskType.transform(taskType.transform(mine, theirs6, 'left'), theirs7, 'left')
        return { status: 200, body: { ops: [remoteOp(6, theirs6), remoteOp(7, theirs7), remoteOp(8, committed, clientId, seqA)], hasMore: false } }
      }
      return undefined
    },
  })
  clientId = s.client.clientId
  const task = await openTask(s, 5, { title: 'hello' })
  s.client.goOffline()
  task.submit(mine)
  s.client.goOnline()
  const sock = await s.nextSocket()
  await nextSent(sock, 'subscribe')
  seqA = task.toStored()!.inflight!.seq
  sock.receive({ type: 'sync_required', taskId: TASK, reason: 'replay window exceeded' })
  sock.receive({ type: 'subscribed', taskIds: [TASK], projectIds: [], all: false })
  await waitFor(() => task.rev === 8, 'caught up to rev 8')
  t.match(pushed, { clientId, mutations: [{ seq: seqA, kind: 'op', taskId: TASK, baseRev: 5, op: mine }] }, 'the queued op pushed with its seq')
  t.equal(task.pending, 0, 'acknowledged by the push, confirmed by the log')
  t.same([task.snapshot.title, task.snapshot.priority], ['1hello A', 4])
  t.same(sock.take('op'), [], 'not sent again on the socket')
  t.ok(s.calls.includes('GET /api/sync/pull'), 'pulled')
})

t.test('without the REST endpoints, sync_required falls back to a socket resume', async (t) => {
  const s = await setup(t)
  const task = await openTask(s, 5, { title: 'x' })
  s.sock.receive({ type: 'sync_required', taskId: TASK, reason: 'gap' })
  const unsub = await nextSent(s.sock, 'unsubscribe')
  t.same(unsub.taskIds, [TASK])
  const sub = await nextSent(s.sock, 'subscribe')
  t.same(sub.since, { [TASK]: 5 })
  s.sock.receive(remoteOp(6, { title: [1, 'y'] }))
  s.sock.receive({ type: 'subscribed', taskIds: [TASK], projectIds: [], all: false })
  t.equal(task.snapshot.title, 'xy')
  t.ok(s.calls.includes('POST /api/sync/push') || s.calls.includes('GET /api/sync/pull'), 'REST tried first')
})

t.test('a push result does not say whether the op committed: the op log settles it (here: a no-op)', async (t) => {
  let seqA = 0
  const s = await setup(t, {
    fetch: (method, path) => {
      if (path === '/api/sync/push') return { status: 200, body: { results: [{ seq: seqA, status: 'applied', rev: 7 }] } }
      if (path.startsWith('/api/sync/pull')) return { status: 404, body: { error: { code: 'not_found', message: 'no' } } }
      if (path === `/api/tasks/${TASK}/ops?from=6`) return { status: 200, body: { ops: [remoteOp(6, { priority: { set: 3 } }), remoteOp(7, { description: ['x'] })], hasMore: false } }
      return undefined
    },
  })
  const task = await openTask(s, 5, { title: 'a' })
  // Sent on the first socket (so it is not folded with what comes after it), then the connection is gone.
  task.submit({ priority: { set: 1 } })
  seqA = (await nextSent(s.sock, 'op')).seq
  s.client.goOffline()
  task.submit({ title: [1, 'b'] })
  s.client.goOnline()
  const sock = await s.nextSocket()
  await nextSent(sock, 'subscribe')
  sock.receive({ type: 'sync_required', taskId: TASK, reason: 'test' })
  sock.receive({ type: 'subscribed', taskIds: [TASK], projectIds: [], all: false })
  const next = await nextSent(sock, 'op')
  t.same([next.baseRev, next.op], [7, { title: [1, 'b'] }], 'the no-op dropped, the pending op sent on the caught-up rev')
  t.same([task.rev, task.snapshot.priority, task.snapshot.description, task.snapshot.title], [7, 3, 'x', 'ab'])
  t.notOk(s.calls.includes(`GET /api/tasks/${TASK}`), 'settled without reloading a snapshot')
})

t.test('after the REST catch-up the task is subscribed again (the server dropped it with sync_required): later ops arrive', async (t) => {
  const s = await setup(t, {
    fetch: (method, path) => {
      if (path === '/api/sync/push') return { status: 200, body: { results: [] } }
      if (path.startsWith('/api/sync/pull')) return { status: 200, body: { tasks: [], comments: [], tombstones: [], cursor: 'c1', hasMore: false, lastSeq: {} } }
      if (path === `/api/tasks/${TASK}/ops?from=6`) return { status: 200, body: { ops: [remoteOp(6, { priority: { set: 2 } })], hasMore: false } }
      return undefined
    },
  })
  const task = await openTask(s, 5, { title: 'x' })
  // Mid-stream, the server says the socket missed revs it can no longer replay: the task is no longer subscribed there.
  s.sock.receive({ type: 'sync_required', taskId: TASK, reason: 'missed ops are no longer in the log; catch up over REST' })
  await waitFor(() => task.rev === 6, 'caught up to rev 6 over REST')
  const sub = await nextSent(s.sock, 'subscribe')
  t.same([sub.taskIds, sub.since], [[TASK], { [TASK]: 6 }], 'subscribed again from the caught-up rev')
  s.sock.receive({ type: 'subscribed', taskIds: [TASK], projectIds: [], all: false })
  s.sock.receive(remoteOp(7, { title: [1, 'y'] }))
  t.same([task.rev, task.snapshot.title, task.snapshot.priority], [7, 'xy', 2])
})

t.test('a subscribe refused as unavailable (storage down during its read) is asked again: the task loads', async (t) => {
  const s = await setup(t)
  const opened = s.client.task(TASK)
  const first = await nextSent(s.sock, 'subscribe')
  t.same(first.taskIds, [TASK])
  s.sock.receive({ type: 'error', code: 'unavailable', message: 'storage is unavailable', ref: TASK })
  s.sock.receive({ type: 'subscribed', taskIds: [], projectIds: [], all: false })
  const again = await nextSent(s.sock, 'subscribe')
  t.same(again.taskIds, [TASK], 'subscribed again on the same socket')
  s.sock.receive({ type: 'snapshot', taskId: TASK, rev: 3, task: snapshot(3, { title: 'back' }) })
  s.sock.receive({ type: 'subscribed', taskIds: [TASK], projectIds: [], all: false })
  const task = await opened
  t.same([task.rev, task.snapshot.title, task.isSubscribed()], [3, 'back', true])
})

t.test('an offline queue never sent goes as one mutation; a push that commits it lets the task take the resume snapshot, no op log read', async (t) => {
  let pushed: { mutations: { seq: number; baseRev: number; op: unknown }[] } | null = null
  let answerPush!: () => void
  const pushAnswered = new Promise<void>((r) => (answerPush = r))
  let clientId = ''
  const s = await setup(t, {
    longAbsenceMs: 1,
    fetch: async (method, path, body) => {
      if (path === '/api/sync/push') {
        pushed = body as typeof pushed
        // Held until the resume's snapshot has come (the push waits its turn at the server).
        await pushAnswered
        return { status: 200, body: { results: [{ seq: pushed!.mutations[0].seq, status: 'applied', rev: 9 }] } }
      }
      if (path.startsWith('/api/sync/pull')) return { status: 200, body: { tasks: [], comments: [], tombstones: [], cursor: 'c1', hasMore: false, lastSeq: {} } }
      return undefined
    },
  })
  clientId = s.client.clientId
  const task = await openTask(s, 5, { title: 'ab' })
  s.client.goOffline()
  task.submit({ title: [2, 'c'] })
  task.submit({ priority: { set: 3 } })
  t.equal(task.pending, 2, 'two local changes')
  await new Promise((r) => setTimeout(r, 10))
  s.client.goOnline()
  const sock = await s.nextSocket()
  await nextSent(sock, 'subscribe')
  await waitFor(() => pushed !== null, 'pushed')
  t.equal(pushed!.mutations.length, 1, 'one mutation')
  t.same([pushed!.mutations[0].baseRev, pushed!.mutations[0].op], [5, taskType.compose({ title: [2, 'c'] }, { priority: { set: 3 } })], 'both edits, on the rev they were made on')
  const seq = pushed!.mutations[0].seq
  // The resume is past the replay window: a snapshot at rev 8, then the stream; the push answers after it.
  sock.receive({ type: 'snapshot', taskId: TASK, rev: 8, task: snapshot(8, { title: 'xab', description: 'day' }) })
  sock.receive({ type: 'subscribed', taskIds: [TASK], projectIds: [], all: false })
  answerPush()
  await waitFor(() => task.rev === 8, 'took the snapshot')
  t.equal(task.pending, 2, 'the op (two changes) waits for its commit on the stream')
  // Our commit at rev 9 comes on the stream after the snapshot, recognised by its seq.
  sock.receive(remoteOp(9, { title: [3, 'c'], priority: { set: 3 } }, clientId, seq))
  await waitFor(() => task.pending === 0, 'acknowledged')
  t.same([task.rev, task.snapshot.title, task.snapshot.description, task.snapshot.priority], [9, 'xabc', 'day', 3])
  t.notOk(s.calls.some((c) => c.includes('/ops')), 'no op log read')
  t.same(sock.take('op'), [], 'never sent again on the socket')
})
