/**
 * Issue #11, defect 2: the sync routes document every status they answer, each
 * with a schema their answers validate against (errors in the contract's shape).
 * Each status here is provoked for real and checked against /docs/json.
 */
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { startTestApp, api, registerOwner, addMember } from '../helpers/app.js'
import { loadOperations, send, undocumented, type Operation } from '../helpers/openapi.js'

t.test('sync routes: every answer is documented, with its schema', async (t) => {
  const { url } = await startTestApp(t, { redis: false, env: { SYNC_PUSH_MAX_MUTATIONS: '5' } })
  const ops = new Map((await loadOperations(url)).map((o) => [o.key, o]))
  const owner = await registerOwner(url)
  const viewer = await addMember(url, owner.accessToken, 'viewer')
  const member = await addMember(url, owner.accessToken, 'member')
  const c = api(url, owner.accessToken)
  const task = (await c.post('/api/tasks', { title: 'T' })).body
  // Two concurrent assignments make a conflict.
  await c.patch(`/api/tasks/${task.id}`, { op: { assigneeId: { set: owner.user.id } }, baseRev: 1 })
  await c.patch(`/api/tasks/${task.id}`, { op: { assigneeId: { set: member.user.id } }, baseRev: 1 })
  const conflictId = (await c.get('/api/sync/conflicts')).body.items[0].id
  const clientId = randomUUID()
  await c.post('/api/sync/push', { clientId, mutations: [] })

  const check = async (key: string, path: string, token: string | undefined, body: unknown, expected: number) => {
    const op = ops.get(key) as Operation
    t.ok(op, `${key} is documented`)
    const answer = await send(url, op.method, path, { token, body })
    t.equal(answer.status, expected, `${key} ${path}: ${expected}`)
    t.equal(undocumented(op, answer), null, `${key}: ${expected} documented with its schema`)
  }
  const push = 'POST /api/sync/push'
  await check(push, '/api/sync/push', owner.accessToken, { clientId, mutations: [{ seq: 1, kind: 'create', taskId: randomUUID(), task: { title: 'x' } }] }, 200)
  await check(push, '/api/sync/push', owner.accessToken, { clientId, mutations: 'no' }, 400)
  await check(push, '/api/sync/push', undefined, { clientId, mutations: [] }, 401)
  await check(push, '/api/sync/push', member.accessToken, { clientId, mutations: [] }, 403)
  await check(push, '/api/sync/push', owner.accessToken, { clientId, mutations: Array.from({ length: 6 }, (_, i) => ({ seq: i + 2, kind: 'op', taskId: task.id, baseRev: 1, op: {} })) }, 413)
  const pull = 'GET /api/sync/pull'
  await check(pull, '/api/sync/pull', owner.accessToken, undefined, 200)
  await check(pull, '/api/sync/pull?cursor=garbage', owner.accessToken, undefined, 200)
  await check(pull, '/api/sync/pull?limit=0', owner.accessToken, undefined, 400)
  await check(pull, '/api/sync/pull', 'not-a-token', undefined, 401)
  const list = 'GET /api/sync/conflicts'
  await check(list, '/api/sync/conflicts?status=all', owner.accessToken, undefined, 200)
  await check(list, '/api/sync/conflicts?status=maybe', owner.accessToken, undefined, 400)
  await check(list, '/api/sync/conflicts', undefined, undefined, 401)
  const one = 'GET /api/sync/conflicts/{id}'
  await check(one, `/api/sync/conflicts/${conflictId}`, owner.accessToken, undefined, 200)
  await check(one, `/api/sync/conflicts/${randomUUID()}`, owner.accessToken, undefined, 404)
  await check(one, '/api/sync/conflicts/nope', owner.accessToken, undefined, 400)
  const resolve = 'POST /api/sync/conflicts/{id}/resolve'
  await check(resolve, `/api/sync/conflicts/${conflictId}/resolve`, viewer.accessToken, { choose: 'incoming' }, 403)
  await check(resolve, `/api/sync/conflicts/${conflictId}/resolve`, owner.accessToken, { value: 42 }, 422)
  await check(resolve, `/api/sync/conflicts/${conflictId}/resolve`, owner.accessToken, {}, 400)
  await check(resolve, `/api/sync/conflicts/${randomUUID()}/resolve`, owner.accessToken, { choose: 'incoming' }, 404)
  await check(resolve, `/api/sync/conflicts/${conflictId}/resolve`, owner.accessToken, { choose: 'incoming' }, 200)
  await check(resolve, `/api/sync/conflicts/${conflictId}/resolve`, owner.accessToken, { value: null }, 409)
  const log = 'GET /api/sync/log'
  await check(log, '/api/sync/log', owner.accessToken, undefined, 200)
  await check(log, '/api/sync/log?cursor=x', owner.accessToken, undefined, 400)
  await check(log, '/api/sync/log', member.accessToken, undefined, 403)
  // A deleted task's conflict: 410 on resolve.
  const t2 = (await c.post('/api/tasks', { title: 'T2' })).body
  await c.patch(`/api/tasks/${t2.id}`, { op: { assigneeId: { set: owner.user.id } }, baseRev: 1 })
  await c.patch(`/api/tasks/${t2.id}`, { op: { assigneeId: { set: member.user.id } }, baseRev: 1 })
  const c2 = (await c.get(`/api/sync/conflicts?taskId=${t2.id}`)).body.items[0].id
  await c.delete(`/api/tasks/${t2.id}`)
  await check(resolve, `/api/sync/conflicts/${c2}/resolve`, owner.accessToken, { choose: 'incoming' }, 410)
})
