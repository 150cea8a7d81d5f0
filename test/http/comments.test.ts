import t from 'tap'
import { randomUUID } from 'node:crypto'
import type { CommentNotice } from '../../src/bus/notices.js'
import { addMember, api, registerOwner, startTestApp } from '../helpers/app.js'
import { until } from '../ws/helpers.js'

const { url, app } = await startTestApp(t)
const owner = await registerOwner(url)
const me = api(url, owner.accessToken)
const member = await addMember(url, owner.accessToken, 'member')
const colleague = api(url, member.accessToken)
const stranger = api(url, (await registerOwner(url)).accessToken)
const taskId = (await me.post('/api/tasks', { title: 'discussed' })).body.id

t.test('create, list, edit, delete', async (t) => {
  const notices: CommentNotice[] = []
  const off = app.comments.onComment((n) => notices.push(n))
  const onBus: CommentNotice[] = []
  const unsubscribe = await app.bus.subscribe(`org:${owner.organization.id}`, (payload) => {
    const n = JSON.parse(payload)
    if (n.kind === 'comment') onBus.push(n)
  })
  t.teardown(async () => {
    off()
    await unsubscribe()
  })
  const id = randomUUID()
  const created = await me.post(`/api/tasks/${taskId}/comments`, { id, body: 'first!' })
  t.equal(created.status, 201)
  t.match(created.body, { id, taskId, parentId: null, authorId: owner.user.id, body: 'first!', editedAt: null, editCount: 0, deleted: false })
  const reply = await colleague.post(`/api/tasks/${taskId}/comments`, { body: 'a reply', parentId: id })
  t.equal(reply.status, 201)
  t.equal(reply.body.parentId, id)
  const edited = await me.patch(`/api/comments/${id}`, { body: 'first! (edited)' })
  t.equal(edited.status, 200)
  t.match(edited.body, { body: 'first! (edited)', editCount: 1 })
  t.type(edited.body.editedAt, 'string')
  const list = await me.get(`/api/tasks/${taskId}/comments?limit=1`)
  t.same(list.body.items.map((c: { id: string }) => c.id), [id])
  const next = await me.get(`/api/tasks/${taskId}/comments?limit=1&cursor=${list.body.nextCursor}`)
  t.same(next.body.items.map((c: { id: string }) => c.id), [reply.body.id])
  t.equal((await me.delete(`/api/comments/${id}`)).status, 204)
  const after = await me.get(`/api/tasks/${taskId}/comments`)
  t.match(after.body.items[0], { id, deleted: true, body: '' }, 'a tombstone keeps the thread')
  t.equal(after.body.items.length, 2)
  t.same(notices.map((n) => [n.kind, n.action, n.comment.id]), [
    ['comment', 'create', id],
    ['comment', 'create', reply.body.id],
    ['comment', 'edit', id],
    ['comment', 'delete', id],
  ])
  await until(() => onBus.length >= 4, 'the four publications on the bus')
  t.same(onBus.map((n) => n.action), ['create', 'create', 'edit', 'delete'], 'published on org:<orgId>')
  t.equal(onBus[0].taskId, taskId)
})

t.test('idempotent by (clientId, seq)', async (t) => {
  const clientId = randomUUID()
  const id = randomUUID()
  const first = await me.post(`/api/tasks/${taskId}/comments`, { id, body: 'once', clientId, seq: 1 })
  t.equal(first.status, 201)
  const again = await me.post(`/api/tasks/${taskId}/comments`, { id, body: 'once', clientId, seq: 1 })
  t.equal(again.status, 200)
  t.same(again.body, first.body)
  const edit = await me.patch(`/api/comments/${id}`, { body: 'twice', clientId, seq: 2 })
  const editAgain = await me.patch(`/api/comments/${id}`, { body: 'twice', clientId, seq: 2 })
  t.equal(editAgain.body.editCount, 1, 'edited once')
  t.same(editAgain.body, edit.body)
  const other = await me.post(`/api/tasks/${taskId}/comments`, { body: 'reused seq', clientId, seq: 2 })
  t.same({ status: other.status, code: other.body.error?.code }, { status: 409, code: 'already_exists' }, 'a seq already used by another mutation')
  const hijack = await colleague.post(`/api/tasks/${taskId}/comments`, { body: 'x', clientId, seq: 3 })
  t.equal(hijack.status, 403, "another device's clientId")
})

t.test('errors', async (t) => {
  const id = (await me.post(`/api/tasks/${taskId}/comments`, { body: 'mine' })).body.id
  t.equal((await colleague.patch(`/api/comments/${id}`, { body: 'not yours' })).status, 403, 'only the author edits')
  t.equal((await colleague.delete(`/api/comments/${id}`)).status, 403, 'a member may not delete another’s comment')
  const theirs = (await colleague.post(`/api/tasks/${taskId}/comments`, { body: 'theirs' })).body.id
  t.equal((await me.delete(`/api/comments/${theirs}`)).status, 204, 'an admin (owner) may')
  t.equal((await me.delete(`/api/comments/${theirs}`)).status, 404, 'already deleted')
  t.equal((await me.patch(`/api/comments/${theirs}`, { body: 'x' })).status, 404, 'a deleted comment cannot be edited')
  const empty = await me.post(`/api/tasks/${taskId}/comments`, { body: '  ' })
  t.same([empty.status, empty.body.error.code], [422, 'invalid_op'])
  t.equal((await me.post(`/api/tasks/${taskId}/comments`, { body: 'x'.repeat(20_001) })).status, 422, 'over the body limit')
  t.equal((await me.post(`/api/tasks/${taskId}/comments`, { body: 5 })).status, 400)
  t.equal((await me.post(`/api/tasks/${taskId}/comments`, { body: 'x', parentId: randomUUID() })).status, 422, 'a parent that is no comment')
  const elsewhere = (await me.post('/api/tasks', { title: 'other' })).body.id
  t.equal((await me.post(`/api/tasks/${elsewhere}/comments`, { body: 'x', parentId: id })).status, 422, 'a parent on another task')
  t.equal((await me.post(`/api/tasks/${taskId}/comments`, { id, body: 'dup' })).status, 409, 'an id in use')
  t.equal((await me.post(`/api/tasks/${randomUUID()}/comments`, { body: 'x' })).status, 404)
  t.equal((await me.get(`/api/tasks/${randomUUID()}/comments`)).status, 404)
  t.equal((await me.get('/api/tasks/zzz/comments')).status, 400)
  t.equal((await me.patch('/api/comments/zzz', { body: 'x' })).status, 400)
  t.equal((await me.get(`/api/tasks/${taskId}/comments?cursor=abc`)).status, 400)
  const viewer = api(url, (await addMember(url, owner.accessToken, 'viewer')).accessToken)
  t.equal((await viewer.get(`/api/tasks/${taskId}/comments`)).status, 200)
  t.equal((await viewer.post(`/api/tasks/${taskId}/comments`, { body: 'x' })).status, 403)
  // Another organization learns nothing.
  t.equal((await stranger.get(`/api/tasks/${taskId}/comments`)).status, 404)
  t.equal((await stranger.post(`/api/tasks/${taskId}/comments`, { body: 'x' })).status, 404)
  t.equal((await stranger.patch(`/api/comments/${id}`, { body: 'x' })).status, 404)
  t.equal((await stranger.delete(`/api/comments/${id}`)).status, 404)
  // A deleted task takes no new comments.
  await me.delete(`/api/tasks/${elsewhere}`)
  t.equal((await me.post(`/api/tasks/${elsewhere}/comments`, { body: 'x' })).status, 410)
  t.equal((await me.get(`/api/comments/${id}`)).status, 404, 'no such route')
})
