/**
 * Creation, the offline queue across a restart, comments, heartbeat and
 * status, against the scripted fake server.
 */
import t from 'tap'
import { memoryStorage, type ClientStatus, type ConflictEvent, type CommentEvent } from '../../src/client/index.js'
import { nextSent, settle, waitFor } from './fake-socket.js'
import { OTHER_CLIENT, TASK, openTask, setup } from './setup.js'
import { slotStorage } from '../../src/client/slots.js'

t.test('createTask: shown at once, create sent, subscribed after the ack, later ops follow', async (t) => {
  const s = await setup(t)
  const task = s.client.createTask({ id: TASK, title: 'new', tags: ['b', 'a'] })
  t.same([task.snapshot.title, task.snapshot.tags, task.rev, task.pending], ['new', ['a', 'b'], 0, 1])
  task.submit({ description: ['details'] })
  const create = await nextSent(s.sock, 'create')
  t.same(create.task, { title: 'new', tags: ['b', 'a'] })
  await settle()
  t.same(s.sock.take('op'), [], 'ops wait for the create ack')
  s.sock.receive({ type: 'ack', taskId: TASK, seq: create.seq, rev: 1 })
  const sub = await nextSent(s.sock, 'subscribe')
  t.same(sub.since, { [TASK]: 1 })
  s.sock.receive({ type: 'subscribed', taskIds: [TASK], projectIds: [], all: false })
  const op = await nextSent(s.sock, 'op')
  t.same([op.baseRev, op.op], [1, { description: ['details'] }])
  t.ok(op.seq > create.seq)
  s.sock.receive({ type: 'ack', taskId: TASK, seq: op.seq, rev: 2 })
  t.same([task.rev, task.pending, task.snapshot.description], [2, 0, 'details'])
})

t.test('a refused create rolls the task back to nothing and says so, on the task and on the client', async (t) => {
  const s = await setup(t)
  const task = s.client.createTask({ id: TASK, title: 'dup' })
  const conflicts: ConflictEvent[] = []
  const onClient: unknown[] = []
  task.on('conflict', (e) => conflicts.push(e))
  s.client.on('conflict', (e) => onClient.push(e))
  const create = await nextSent(s.sock, 'create')
  // The first already_exists may be a seq another writer used: the create goes again under a fresh seq.
  s.sock.receive({ type: 'error', code: 'already_exists', message: 'seq used', ref: TASK, seq: create.seq })
  const again = await nextSent(s.sock, 'create')
  t.ok(again.seq > create.seq + 1000, 'a fresh seq, far past the counter')
  t.equal(again.taskId, TASK)
  // Refused again under a seq of its own: the id is taken.
  s.sock.receive({ type: 'error', code: 'already_exists', message: 'id taken', ref: TASK, seq: again.seq })
  t.match(conflicts, [{ kind: 'rejected', code: 'already_exists' }])
  t.match(onClient, [{ kind: 'rejected', code: 'already_exists', taskId: TASK }])
  t.equal(task.deleted, true)
  t.equal(task.pending, 0)
})

t.test('offline edits survive a restart: recorded with their seq before sending, sent by the next process', async (t) => {
  const storage = memoryStorage()
  const first = await setup(t, { storage, connect: false })
  first.client.goOffline()
  const clientId = first.client.clientId
  const task = first.client.createTask({ id: TASK, title: 'offline' })
  task.submit({ title: [7, ' edit'] })
  task.submit({ priority: { set: 2 } })
  t.equal(task.pending, 3)
  await first.client.close()

  const second = await setup(t, { storage })
  t.equal(second.client.clientId, clientId, 'same clientId from storage')
  const restored = second.client.openTasks[0]
  t.same([restored.id, restored.snapshot.title, restored.pending], [TASK, 'offline edit', 3])
  const create = await nextSent(second.sock, 'create')
  t.equal(create.seq, 1, 'the create keeps the seq it was recorded with')
  second.sock.receive({ type: 'ack', taskId: TASK, seq: 1, rev: 1 })
  await nextSent(second.sock, 'subscribe')
  second.sock.receive({ type: 'subscribed', taskIds: [TASK], projectIds: [], all: false })
  const op = await nextSent(second.sock, 'op')
  t.same(op.op, { title: [7, ' edit'], priority: { set: 2 } })
  t.ok(op.seq > 1)
  second.sock.receive({ type: 'ack', taskId: TASK, seq: op.seq, rev: 2 })
  t.equal(restored.pending, 0)
  // The writer's keys live in its slot of the storage.
  const slot = slotStorage(storage, clientId)
  let stored = await slot.load()
  for (let i = 0; i < 100 && (stored[`task:${TASK}`] as { base: { rev: number } }).base.rev < 2; i++) {
    await settle()
    stored = await slot.load()
  }
  t.match(stored[`task:${TASK}`], { base: { rev: 2, title: 'offline edit', priority: 2 }, inflight: null, pending: null })
  t.ok((stored.meta as { seq: number }).seq >= op.seq, 'the seq counter is stored')
})

t.test('an in-flight op restored after a crash is resent with its recorded seq', async (t) => {
  const storage = memoryStorage()
  const first = await setup(t, { storage })
  const task = await openTask(first, 5, { title: 'x' })
  task.submit({ title: [1, 'y'] })
  const sent = await nextSent(first.sock, 'op')
  await first.client.close() // no ack: the process "dies" with the op in flight

  const second = await setup(t, { storage })
  const sub = await nextSent(second.sock, 'subscribe')
  t.same(sub.since, { [TASK]: 5 })
  second.sock.receive({ type: 'subscribed', taskIds: [TASK], projectIds: [], all: false })
  const resent = await nextSent(second.sock, 'op')
  t.same([resent.seq, resent.baseRev, resent.op], [sent.seq, 5, { title: [1, 'y'] }])
})

t.test('comments: optimistic create, edit and delete; acks empty the outbox; others arrive live', async (t) => {
  const s = await setup(t)
  const task = await openTask(s, 5)
  const seen: CommentEvent[] = []
  task.on('comment', (e) => seen.push(e))
  const c = task.addComment('first!')
  t.same(task.comments.map((x) => x.body), ['first!'])
  const create = await nextSent(s.sock, 'comment')
  t.same([create.action, create.commentId, create.body, create.parentId], ['create', c.id, 'first!', null])
  task.editComment(c.id, 'first, edited')
  await settle()
  t.same(s.sock.take('comment'), [], 'one comment mutation in flight at a time')
  s.sock.receive({ type: 'ack', taskId: TASK, seq: create.seq, commentId: c.id })
  const edit = await nextSent(s.sock, 'comment')
  t.same([edit.action, edit.body], ['edit', 'first, edited'])
  s.sock.receive({ type: 'ack', taskId: TASK, seq: edit.seq, commentId: c.id })
  task.deleteComment(c.id)
  t.same(task.comments, [])
  const del = await nextSent(s.sock, 'comment')
  s.sock.receive({ type: 'error', code: 'forbidden', message: 'not yours', ref: TASK, seq: del.seq })
  t.same(task.comments.map((x) => x.body), ['first, edited'], 'refused delete rolled back')
  const other = { id: '44444444-4444-4444-8444-444444444444', taskId: TASK, parentId: null, authorId: 'u2', body: 'hi', createdAt: '2030-01-01T00:00:00.000Z', editedAt: null, editCount: 0, deleted: false }
  s.sock.receive({ type: 'comment', taskId: TASK, comment: other })
  t.same(task.comments.map((x) => x.body), ['first, edited', 'hi'])
  t.same(seen.map((e) => e.local), [true, true, true, true, false])
})

t.test('heartbeat: a ping after a quiet beat, a new socket after two', async (t) => {
  const s = await setup(t, { heartbeatMs: 60 })
  const ping = await nextSent(s.sock, 'ping')
  t.same(ping, { type: 'ping' })
  s.sock.receive({ type: 'pong', serverTime: new Date().toISOString() })
  await nextSent(s.sock, 'ping')
  // No pong this time: the socket is taken for dead.
  await waitFor(() => s.sockets.length === 2, 'a reconnect')
  t.ok(s.sockets[0].closedByClient, 'the dead socket was closed by the client')
})

t.test('status events: connecting, syncing, online; offline on goOffline; back with goOnline', async (t) => {
  const s = await setup(t, { connect: false })
  const seen: ClientStatus[] = []
  s.client.on('status', (x) => seen.push(x))
  await s.nextSocket()
  await openTask(s, 3)
  await waitFor(() => s.client.status === 'online', 'online')
  s.client.goOffline()
  t.equal(s.client.status, 'offline')
  s.client.goOnline()
  const sock = await s.nextSocket()
  const sub = await nextSent(sock, 'subscribe')
  t.same(sub.since, { [TASK]: 3 })
  t.equal(s.client.status, 'syncing', 'resuming')
  sock.receive({ type: 'subscribed', taskIds: [TASK], projectIds: [], all: false })
  t.equal(s.client.status, 'online')
  t.same(seen.slice(-4), ['offline', 'connecting', 'syncing', 'online'])
  t.ok(seen.includes('connecting'))
})

t.test('task(id) of a task the server does not know rejects with not_found', async (t) => {
  const s = await setup(t)
  const p = s.client.task(TASK)
  await nextSent(s.sock, 'subscribe')
  s.sock.receive({ type: 'error', code: 'not_found', message: 'no such task', ref: TASK })
  await t.rejects(p, { code: 'not_found' })
  void OTHER_CLIENT
})

t.test('a closed client writes nothing more and refuses edits (the next process owns the storage)', async (t) => {
  const storage = memoryStorage()
  const s = await setup(t, { storage })
  const task = await openTask(s, 5, { title: 'x' })
  await s.client.close()
  const before = JSON.stringify(await storage.load())
  t.throws(() => task.submit({ title: ['y'] }), { code: 'unavailable' })
  s.sock.receive({ type: 'op', taskId: TASK, rev: 6, op: { title: ['z'] }, userId: 'u', deviceId: 'd', clientId: OTHER_CLIENT, seq: 1, at: new Date().toISOString() })
  await settle()
  t.equal(JSON.stringify(await storage.load()), before, 'storage untouched after close')
})

t.test('a refused hello replaces the socket at once (no waiting for the welcome timeout)', async (t) => {
  const s = await setup(t, { connect: false })
  const errors: string[] = []
  s.client.on('error', (e) => errors.push(e.message))
  const first = await waitFor(() => s.sockets[0], 'socket')
  first.open()
  first.receive({ type: 'error', code: 'unavailable', message: 'storage down', ref: s.client.clientId })
  await waitFor(() => s.sockets.length === 2, 'a second socket')
  t.ok(first.closedByClient, 'the refused socket was closed')
  t.match(errors, [/hello refused: unavailable/])
})

t.test("other clients' ops reach storage in one write a little later, and on close", async (t) => {
  const inner = memoryStorage()
  let saves = 0
  const storage = { locks: inner.locks, load: () => inner.load(), save: (c: Record<string, unknown>) => (saves++, inner.save(c)) }
  const s = await setup(t, { storage })
  const clientId = s.client.clientId
  const task = await openTask(s, 5, { title: 'x' })
  await settle()
  const stored = async () => ((await slotStorage(inner, clientId).load())[`task:${TASK}`] as { base: { rev: number; title: string } }).base
  const before = saves
  for (let rev = 6; rev <= 25; rev++) s.sock.receive({ type: 'op', taskId: TASK, rev, op: { title: [1, 'y'] }, userId: 'u', deviceId: 'd', clientId: OTHER_CLIENT, seq: rev, at: new Date().toISOString() })
  t.equal(task.rev, 25, 'all applied at once')
  await settle()
  t.equal(saves, before, 'none written at once (nothing local changed)')
  for (let i = 0; i < 300 && (await stored()).rev !== 25; i++) await settle()
  const b = await stored()
  t.same([b.rev, b.title], [25, 'x' + 'y'.repeat(20)], 'written within a while')
  t.equal(saves, before + 1, 'in one write')

  s.sock.receive({ type: 'op', taskId: TASK, rev: 26, op: { title: [1, 'z'] }, userId: 'u', deviceId: 'd', clientId: OTHER_CLIENT, seq: 26, at: new Date().toISOString() })
  await s.client.close()
  t.equal((await stored()).rev, 26, 'close writes what is not written yet')
})
