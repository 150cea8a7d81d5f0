/**
 * A resend is the same mutation (PROTOCOL.md section 3): a different mutation
 * under an already used (clientId, seq), such as another tab's edit sharing the
 * clientId, is answered `already_exists` and commits nothing, over the socket,
 * in a push and on PATCH; a true resend, also one rebased by the client on the
 * ops it received since (as OT clients do), still gets the original answer.
 */
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { startTestApp, registerOwner, api } from '../helpers/app.js'
import { TestSocket } from '../ws/helpers.js'

const a = await startTestApp(t)
const owner = await registerOwner(a.url)
const orgId = owner.organization.id
const client = api(a.url, owner.accessToken)

const ops = async (taskId: string) => (await client.get(`/api/tasks/${taskId}/ops?from=1`)).body.ops as { rev: number; seq: number | null }[]

t.test('socket: another op, create or comment under a used seq is already_exists and commits nothing', async (t) => {
  const s = await TestSocket.ready(a.url, owner.accessToken)
  t.teardown(() => s.close())
  const taskId = randomUUID()
  await s.request({ type: 'create', taskId, seq: 1, task: { title: 'abc' } }, 'ack')
  const first = await s.request({ type: 'op', taskId, baseRev: 1, seq: 2, op: { status: { set: 'done' } } }, 'ack', (m) => m.seq === 2)
  t.equal(first.rev, 2)
  const resend = await s.request({ type: 'op', taskId, baseRev: 1, seq: 2, op: { status: { set: 'done' } } }, 'ack', (m) => m.seq === 2)
  t.equal(resend.rev, 2, 'a resend gets the original ack')

  const other = s.nextWhere((m) => m.seq === 2)
  s.send({ type: 'op', taskId, baseRev: 2, seq: 2, op: { title: [3, '!'] } })
  t.match(await other, { type: 'error', code: 'already_exists', seq: 2, ref: 2 }, 'another op under seq 2')
  const otherCreate = s.nextWhere((m) => m.seq === 1)
  s.send({ type: 'create', taskId, seq: 1, task: { title: 'abd' } })
  t.match(await otherCreate, { type: 'error', code: 'already_exists', seq: 1 }, 'another create under seq 1')
  const commentId = randomUUID()
  await s.request({ type: 'comment', action: 'create', commentId, taskId, seq: 3, body: 'first' }, 'ack', (m) => m.seq === 3)
  const otherComment = s.nextWhere((m) => m.seq === 3)
  s.send({ type: 'comment', action: 'create', commentId: randomUUID(), taskId, seq: 3, body: 'second' })
  t.match(await otherComment, { type: 'error', code: 'already_exists', seq: 3 }, 'another comment under seq 3')
  const sameComment = await s.request({ type: 'comment', action: 'create', commentId, taskId, seq: 3, body: 'first' }, 'ack', (m) => m.seq === 3)
  t.equal(sameComment.commentId, commentId, 'the comment resent is acked')

  const task = (await client.get(`/api/tasks/${taskId}`)).body
  t.match(task, { rev: 2, title: 'abc', status: 'done' }, 'nothing of the other mutations committed')
  t.same((await ops(taskId)).map((o) => o.rev), [1, 2])
  t.equal((await client.get(`/api/tasks/${taskId}/comments`)).body.items.length, 1, 'one comment')
})

t.test('socket: a resend rebased on the ops received since is recognised; another op at that base is not', async (t) => {
  const s = await TestSocket.ready(a.url, owner.accessToken)
  const bob = await TestSocket.ready(a.url, owner.accessToken)
  t.teardown(() => (s.close(), bob.close()))
  const taskId = randomUUID()
  await s.request({ type: 'create', taskId, seq: 1, task: { title: 'abc' } }, 'ack')
  await bob.request({ type: 'op', taskId, baseRev: 1, seq: 1, op: { title: ['A'] } }, 'ack')
  // Sent on rev 1 before bob's op arrived; committed at rev 3 as [3, 'B'].
  const acked = await s.request({ type: 'op', taskId, baseRev: 1, seq: 2, op: { title: [2, 'B'] } }, 'ack', (m) => m.seq === 2)
  t.equal(acked.rev, 3)
  // The ack was lost; the client took bob's rev 2, rebased its op on it and resends at baseRev 2.
  const again = await s.request({ type: 'op', taskId, baseRev: 2, seq: 2, op: { title: [3, 'B'] } }, 'ack', (m) => m.seq === 2)
  t.same({ rev: again.rev, type: again.type }, { rev: 3, type: 'ack' }, 'the rebased resend gets the original ack')
  const asFirst = await s.request({ type: 'op', taskId, baseRev: 1, seq: 2, op: { title: [2, 'B'] } }, 'ack', (m) => m.seq === 2)
  t.equal(asFirst.rev, 3, 'the resend as first sent too')
  const other = s.nextWhere((m) => m.seq === 2)
  s.send({ type: 'op', taskId, baseRev: 2, seq: 2, op: { title: [3, 'C'] } })
  t.match(await other, { type: 'error', code: 'already_exists' }, 'another op at that base is not a resend')
  t.equal((await client.get(`/api/tasks/${taskId}`)).body.title, 'AabBc')

  // Recorded as a no-op at rev 3 (deletes what the other writer deleted), then resent rebased.
  await bob.request({ type: 'op', taskId, baseRev: 3, seq: 2, op: { title: [{ d: 1 }] } }, 'ack')
  const noop = await s.request({ type: 'op', taskId, baseRev: 3, seq: 3, op: { title: [{ d: 1 }] } }, 'ack', (m) => m.seq === 3)
  t.match(noop, { rev: 4, noop: true })
  const noopAgain = await s.request({ type: 'op', taskId, baseRev: 3, seq: 3, op: { title: [{ d: 1 }] } }, 'ack', (m) => m.seq === 3)
  t.match(noopAgain, { rev: 4, noop: true }, 'a no-op resent is the no-op it was')
  const notNoop = s.nextWhere((m) => m.seq === 3)
  s.send({ type: 'op', taskId, baseRev: 4, seq: 3, op: { priority: { set: 2 } } })
  t.match(await notNoop, { type: 'error', code: 'already_exists' }, 'a real op under the no-op seq')
  t.same((await ops(taskId)).map((o) => o.rev), [1, 2, 3, 4])
})

t.test('push: another mutation under a used seq is rejected already_exists; the rest of the batch runs', async (t) => {
  const clientId = randomUUID()
  const taskId = randomUUID()
  const batch = [
    { seq: 1, kind: 'create', taskId, task: { title: 'p' } },
    { seq: 2, kind: 'op', taskId, baseRev: 1, op: { priority: { set: 3 } } },
  ]
  t.same((await client.post('/api/sync/push', { clientId, mutations: batch })).body.results.map((r: any) => r.status), ['applied', 'applied'])
  const res = await client.post('/api/sync/push', {
    clientId,
    mutations: [
      batch[0],
      { seq: 2, kind: 'op', taskId, baseRev: 2, op: { priority: { set: 1 } } },
      { seq: 3, kind: 'op', taskId, baseRev: 2, op: { title: [1, '!'] } },
    ],
  })
  t.equal(res.status, 200)
  t.match(res.body.results, [
    { seq: 1, status: 'duplicate', rev: 1 },
    { seq: 2, status: 'rejected', error: { code: 'already_exists' } },
    { seq: 3, status: 'applied', rev: 3 },
  ])
  t.match((await client.get(`/api/tasks/${taskId}`)).body, { priority: 3, title: 'p!', rev: 3 }, 'the other mutation committed nothing')
})

t.test('PATCH: another op or other field values under a used seq answer 409 already_exists', async (t) => {
  const clientId = randomUUID()
  const taskId = randomUUID()
  t.equal((await client.post('/api/tasks', { id: taskId, title: 'r', clientId, seq: 1 })).status, 201)
  const op = await client.patch(`/api/tasks/${taskId}`, { op: { status: { set: 'in_progress' } }, baseRev: 1, clientId, seq: 2 })
  t.equal(op.status, 200)
  t.equal((await client.patch(`/api/tasks/${taskId}`, { op: { status: { set: 'in_progress' } }, baseRev: 1, clientId, seq: 2 })).status, 200, 'a resend')
  const otherOp = await client.patch(`/api/tasks/${taskId}`, { op: { status: { set: 'done' } }, baseRev: 2, clientId, seq: 2 })
  t.same({ status: otherOp.status, code: otherOp.body.error?.code }, { status: 409, code: 'already_exists' })

  const fields = await client.patch(`/api/tasks/${taskId}`, { title: 'renamed', clientId, seq: 3 })
  t.equal(fields.status, 200)
  const fieldsAgain = await client.patch(`/api/tasks/${taskId}`, { title: 'renamed', clientId, seq: 3 })
  t.same({ status: fieldsAgain.status, rev: fieldsAgain.body.rev }, { status: 200, rev: 3 }, 'plain field values resent')
  const otherFields = await client.patch(`/api/tasks/${taskId}`, { title: 'other', clientId, seq: 3 })
  t.same({ status: otherFields.status, code: otherFields.body.error?.code }, { status: 409, code: 'already_exists' })
  const otherCreate = await client.post('/api/tasks', { id: randomUUID(), title: 'r2', clientId, seq: 1 })
  t.same({ status: otherCreate.status, code: otherCreate.body.error?.code }, { status: 409, code: 'already_exists' })
  t.match((await client.get(`/api/tasks/${taskId}`)).body, { rev: 3, status: 'in_progress', title: 'renamed' }, 'nothing committed by the refused ones')
  t.same((await ops(taskId)).map((o) => o.rev), [1, 2, 3])
  void orgId
})
