import t from 'tap'
import { randomUUID } from 'node:crypto'
import { addMember, api, registerOwner, startTestApp } from '../helpers/app.js'

const { url, app } = await startTestApp(t)
const owner = await registerOwner(url)
const me = api(url, owner.accessToken)
const stranger = api(url, (await registerOwner(url)).accessToken)

t.test('create, read, list: the snapshot of PROTOCOL.md section 1', async (t) => {
  const id = randomUUID()
  const created = await me.post('/api/tasks', { id, title: 'Ship v1', tags: ['b', 'a'], priority: 2, dueAt: '2026-12-01T01:00:00+01:00', customFields: { estimate: 3, meta: { a: [1, { b: null }] } } })
  t.equal(created.status, 201)
  t.match(created.body, { id, rev: 1, title: 'Ship v1', description: '', status: 'todo', priority: 2, tags: ['a', 'b'], assigneeId: null, projectId: null, dueAt: '2026-12-01T00:00:00.000Z', customFields: { estimate: 3, meta: { a: [1, { b: null }] } }, deleted: false, updatedBy: owner.user.id })
  t.same(created.body.customFields, { estimate: 3, meta: { a: [1, { b: null }] } }, 'nested custom values survive serialization')
  t.same(created.body.clock, { [owner.device.id]: 1 })
  t.equal(created.headers.get('etag'), '"1"')
  const read = await me.get(`/api/tasks/${id}`)
  t.equal(read.status, 200)
  t.same(read.body, created.body)
  const noId = await me.post('/api/tasks', { title: 'server picks the id' })
  t.equal(noId.status, 201)
  t.match(noId.body.id, /^[0-9a-f-]{36}$/)
})

t.test('create errors', async (t) => {
  t.equal((await me.post('/api/tasks', {})).status, 400, 'title is required')
  t.equal((await me.post('/api/tasks', { title: 5 })).status, 400, 'a wrong JSON type')
  t.equal((await me.post('/api/tasks', { title: 'x', color: 'red' })).status, 400, 'an unknown field')
  const bad = await me.post('/api/tasks', { title: 'x', priority: 9 })
  t.equal(bad.status, 422)
  t.equal(bad.body.error.code, 'invalid_op')
  t.equal((await me.post('/api/tasks', { title: 'x'.repeat(1001) })).body.error.code, 'invalid_op', 'over the title limit')
  t.equal((await me.post('/api/tasks', { title: 'x', status: 'nope' })).status, 422)
  const project = await me.post('/api/tasks', { title: 'x', projectId: randomUUID() })
  t.equal(project.status, 422, 'a project that is not the org’s')
  t.match(project.body.error.message, /projectId/)
  const id = randomUUID()
  t.equal((await me.post('/api/tasks', { id, title: 'x' })).status, 201)
  const again = await me.post('/api/tasks', { id, title: 'x' })
  t.equal(again.status, 409)
  t.equal(again.body.error.code, 'already_exists')
  t.equal((await me.post('/api/tasks', { id: 'not-a-uuid', title: 'x' })).status, 400)
  t.equal((await me.post('/api/tasks', { title: 'x', clientId: randomUUID() })).status, 400, 'clientId without seq')
  t.equal((await api(url).post('/api/tasks', { title: 'x' })).status, 401)
})

t.test('a project of the org may hold tasks; list filters and pagination', async (t) => {
  const project = await me.post('/api/projects', { name: 'Filters' })
  t.equal(project.status, 201)
  const projectId = project.body.id
  const assignee = randomUUID()
  const made = []
  for (let i = 0; i < 5; i++) {
    const res = await me.post('/api/tasks', {
      title: `Filter me ${i}`,
      description: i === 3 ? 'has the NEEDLE_x inside' : '',
      projectId,
      status: i % 2 ? 'done' : 'todo',
      tags: i < 2 ? ['red'] : ['blue'],
      assigneeId: i === 4 ? assignee : null,
    })
    t.equal(res.status, 201)
    made.push(res.body.id)
  }
  const all = await me.get(`/api/tasks?projectId=${projectId}&limit=2`)
  t.equal(all.status, 200)
  t.equal(all.body.items.length, 2)
  t.type(all.body.nextCursor, 'string')
  const ids: string[] = all.body.items.map((x: { id: string }) => x.id)
  let cursor = all.body.nextCursor
  while (cursor) {
    const page = await me.get(`/api/tasks?projectId=${projectId}&limit=2&cursor=${cursor}`)
    ids.push(...page.body.items.map((x: { id: string }) => x.id))
    cursor = page.body.nextCursor
  }
  t.same(ids, [...made].sort(), 'every task once, ordered by id')
  t.equal((await me.get(`/api/tasks?projectId=${projectId}&status=done`)).body.items.length, 2)
  t.equal((await me.get(`/api/tasks?projectId=${projectId}&tag=red`)).body.items.length, 2)
  t.same((await me.get(`/api/tasks?assigneeId=${assignee}`)).body.items.map((x: { id: string }) => x.id), [made[4]])
  t.same((await me.get(`/api/tasks?q=needle_X`)).body.items.map((x: { id: string }) => x.id), [made[3]], 'q is case-insensitive, in the description too')
  t.equal((await me.get(`/api/tasks?q=${encodeURIComponent('%')}`)).body.items.length, 0, 'q is a plain substring, not a pattern')
  await me.delete(`/api/tasks/${made[0]}`)
  t.equal((await me.get(`/api/tasks?projectId=${projectId}`)).body.items.length, 4, 'deleted tasks are not listed')
  t.equal((await stranger.get(`/api/tasks?projectId=${projectId}`)).body.items.length, 0, 'another org sees nothing')
  t.equal((await me.get('/api/tasks?cursor=garbage')).status, 400)
  t.equal((await me.get('/api/tasks?projectId=nope')).status, 400)
})

t.test('PATCH with an op, If-Match, baseRev and plain fields', async (t) => {
  const id = (await me.post('/api/tasks', { title: 'abc' })).body.id
  const op = await me.patch(`/api/tasks/${id}`, { op: { title: [3, 'd'] }, baseRev: 1 })
  t.equal(op.status, 200)
  t.equal(op.body.rev, 2)
  t.equal(op.body.title, 'abcd')
  t.equal(op.headers.get('etag'), '"2"')
  const viaIfMatch = await me.patch(`/api/tasks/${id}`, { op: { title: ['X'] } }, { 'if-match': '"1"' })
  t.equal(viaIfMatch.body.title, 'Xabcd', 'based on rev 1, transformed')
  t.equal(viaIfMatch.body.rev, 3)
  const current = await me.patch(`/api/tasks/${id}`, { op: { priority: { set: 4 } } })
  t.equal(current.body.rev, 4, 'no baseRev at all: the current rev')
  const fields = await me.patch(`/api/tasks/${id}`, { title: 'Xabcd!', status: 'in_progress', tags: ['z'], customFields: { estimate: 5 } })
  t.equal(fields.status, 200)
  t.match(fields.body, { rev: 5, title: 'Xabcd!', status: 'in_progress', tags: ['z'], customFields: { estimate: 5 } })
  const unset = await me.patch(`/api/tasks/${id}`, { customFields: { estimate: null }, tags: [] })
  t.same([unset.body.customFields, unset.body.tags], [{}, []], 'null unsets a key; tags replaces the set')
  const same = await me.patch(`/api/tasks/${id}`, { title: 'Xabcd!' })
  t.equal(same.body.rev, 6, 'a patch that changes nothing commits nothing')
  const ops = await me.get(`/api/tasks/${id}/ops?from=5`)
  t.same(ops.body.ops.map((o: { rev: number }) => o.rev), [5, 6])
  t.same(ops.body.ops[0].op.title, [5, '!'], 'text fields become a minimal text edit')
})

t.test('PATCH errors', async (t) => {
  const id = (await me.post('/api/tasks', { title: 'abc' })).body.id
  const past = await me.patch(`/api/tasks/${id}`, { op: { title: [9, 'x'] }, baseRev: 1 })
  t.same([past.status, past.body.error.code], [422, 'invalid_op'])
  t.same((await me.patch(`/api/tasks/${id}`, { op: { nope: 1 } })).status, 422, 'an unknown op key')
  t.same((await me.patch(`/api/tasks/${id}`, { op: {}, baseRev: 7 })).status, 400, 'baseRev ahead of the task')
  t.same((await me.patch(`/api/tasks/${id}`, { op: {} }, { 'if-match': 'soon' })).status, 400, 'a malformed If-Match')
  t.same((await me.patch(`/api/tasks/${id}`, { op: {}, title: 'x' })).status, 400, 'op and fields together')
  t.same((await me.patch(`/api/tasks/${id}`, { title: 'x', baseRev: 1 })).status, 400, 'baseRev with fields')
  t.same((await me.patch(`/api/tasks/${id}`, { priority: 7 })).status, 422)
  t.same((await me.patch(`/api/tasks/${randomUUID()}`, { title: 'x' })).status, 404, 'a missing task (never a create)')
  t.same((await me.patch(`/api/tasks/${randomUUID()}`, { op: { title: ['x'] }, baseRev: 1 })).status, 404)
  t.same((await me.patch('/api/tasks/not-a-uuid', { title: 'x' })).status, 400, 'a malformed id')
  t.same((await stranger.patch(`/api/tasks/${id}`, { title: 'x' })).status, 404, "another org's task")
  t.same((await stranger.get(`/api/tasks/${id}`)).status, 404)
  t.same((await me.get(`/api/tasks/${id}`)).body.rev, 1, 'nothing was committed')
})

t.test('idempotent PATCH and create by (clientId, seq); a clientId of another device is 403', async (t) => {
  const clientId = randomUUID()
  const id = randomUUID()
  const created = await me.post('/api/tasks', { id, title: 'a', clientId, seq: 1 })
  t.equal(created.status, 201)
  const resent = await me.post('/api/tasks', { id, title: 'a', clientId, seq: 1 })
  t.equal(resent.status, 200, 'a resent create answers 200')
  t.equal(resent.body.rev, 1)
  const first = await me.patch(`/api/tasks/${id}`, { op: { title: [1, 'b'] }, baseRev: 1, clientId, seq: 2 })
  t.equal(first.body.rev, 2)
  await me.patch(`/api/tasks/${id}`, { op: { priority: { set: 1 } }, clientId, seq: 3 })
  const again = await me.patch(`/api/tasks/${id}`, { op: { title: [1, 'b'] }, baseRev: 1, clientId, seq: 2 })
  t.equal(again.status, 200)
  t.same([again.body.rev, again.body.title], [3, 'ab'], 'the current snapshot; applied once')
  const member = await addMember(url, owner.accessToken, 'member')
  const other = await api(url, member.accessToken).patch(`/api/tasks/${id}`, { op: { title: ['x'] }, clientId, seq: 9 })
  t.same([other.status, other.body.error.code], [403, 'forbidden'])
  t.equal((await me.get(`/api/tasks/${id}`)).body.rev, 3)
  const half = await me.patch(`/api/tasks/${id}`, { op: { title: ['x'] }, clientId })
  t.same([half.status, half.body.error.message], [400, 'clientId and seq go together'], 'a clientId without its seq')
  const halfCreate = await me.post('/api/tasks', { title: 'x', seq: 4 })
  t.same([halfCreate.status, halfCreate.body.error.message], [400, 'clientId and seq go together'], 'a seq without its clientId')
  const halfComment = await me.post(`/api/tasks/${id}/comments`, { body: 'hi', clientId })
  t.same([halfComment.status, halfComment.body.error.message], [400, 'clientId and seq go together'], 'on a comment too')
  t.equal((await me.get(`/api/tasks/${id}`)).body.rev, 3, 'nothing committed')
})

t.test('viewers read but do not change', async (t) => {
  const viewer = api(url, (await addMember(url, owner.accessToken, 'viewer')).accessToken)
  const id = (await me.post('/api/tasks', { title: 'read only' })).body.id
  t.equal((await viewer.get(`/api/tasks/${id}`)).status, 200)
  t.equal((await viewer.post('/api/tasks', { title: 'x' })).status, 403)
  t.equal((await viewer.patch(`/api/tasks/${id}`, { title: 'x' })).status, 403)
  t.equal((await viewer.delete(`/api/tasks/${id}`)).status, 403)
})

t.test('ops after the log was trimmed: 409 rev_too_old for revs it no longer holds, never a page with a gap', async (t) => {
  const id = (await me.post('/api/tasks', { title: 'long lived' })).body.id
  for (let i = 0; i < 5; i++) await me.patch(`/api/tasks/${id}`, { priority: (i % 4) + 1 })
  const report = await app.housekeeping.run({ replayWindowOps: 3 })
  t.ok(report.opsTrimmed! >= 3, 'revs 1..3 of 6 trimmed')
  for (const from of [0, 1, 3]) {
    const gone = await me.get(`/api/tasks/${id}/ops?from=${from}`)
    t.same([gone.status, gone.body.error.code], [409, 'rev_too_old'], `from=${from}: the log starts at rev 4`)
  }
  const kept = await me.get(`/api/tasks/${id}/ops?from=4`)
  t.same([kept.status, kept.body.ops.map((o: { rev: number }) => o.rev)], [200, [4, 5, 6]], 'from the oldest kept rev on: 200')
  const ahead = await me.get(`/api/tasks/${id}/ops?from=9`)
  t.same([ahead.status, ahead.body.ops, ahead.body.hasMore], [200, [], false], 'past the head: an empty page')
})

t.test('DELETE: 204, then the tombstone snapshot, 410 for changes', async (t) => {
  const id = (await me.post('/api/tasks', { title: 'to delete' })).body.id
  t.equal((await stranger.delete(`/api/tasks/${id}`)).status, 404)
  const del = await me.delete(`/api/tasks/${id}`)
  t.equal(del.status, 204)
  t.equal(del.body, null)
  const tomb = await me.get(`/api/tasks/${id}`)
  t.equal(tomb.status, 200)
  t.match(tomb.body, { id, rev: 2, deleted: true, title: '' })
  const again = await me.delete(`/api/tasks/${id}`)
  t.same([again.status, again.body.error.code], [410, 'task_deleted'])
  t.equal((await me.patch(`/api/tasks/${id}`, { op: { title: ['x'] }, baseRev: 1 })).status, 410)
  t.equal((await me.patch(`/api/tasks/${id}`, { title: 'x' })).status, 410)
  t.equal((await me.delete(`/api/tasks/${randomUUID()}`)).status, 404)
  t.equal((await me.delete('/api/tasks/123')).status, 400)
})

t.test('history and ops', async (t) => {
  const id = (await me.post('/api/tasks', { title: 'h' })).body.id
  for (let i = 0; i < 4; i++) await me.patch(`/api/tasks/${id}`, { priority: i + 1 })
  const history = await me.get(`/api/tasks/${id}/history?limit=3`)
  t.equal(history.status, 200)
  t.same(history.body.items.map((h: { rev: number }) => h.rev), [1, 2, 3])
  t.same(history.body.items[1].changes, { priority: { from: 0, to: 1 } })
  t.equal(history.body.items[1].userId, owner.user.id)
  const rest = await me.get(`/api/tasks/${id}/history?cursor=${history.body.nextCursor}`)
  t.same(rest.body.items.map((h: { rev: number }) => h.rev), [4, 5])
  t.equal(rest.body.nextCursor, null)
  const ops = await me.get(`/api/tasks/${id}/ops?limit=2`)
  t.same(ops.body.ops.map((o: { rev: number }) => o.rev), [1, 2])
  t.equal(ops.body.hasMore, true)
  t.match(ops.body.ops[0], { type: 'op', taskId: id, rev: 1, op: { title: ['h'] }, userId: owner.user.id, deviceId: owner.device.id, clientId: null, seq: null })
  const tail = await me.get(`/api/tasks/${id}/ops?from=4`)
  t.same([tail.body.ops.map((o: { rev: number }) => o.rev), tail.body.hasMore], [[4, 5], false])
  t.equal((await me.get(`/api/tasks/${id}/ops?from=x`)).status, 400)
  t.equal((await stranger.get(`/api/tasks/${id}/ops`)).status, 404)
  t.equal((await stranger.get(`/api/tasks/${id}/history`)).status, 404)
  t.equal((await me.get(`/api/tasks/${randomUUID()}/history`)).status, 404)
  t.equal((await me.get(`/api/tasks/${id}/history?cursor=zzz`)).status, 400)
})
