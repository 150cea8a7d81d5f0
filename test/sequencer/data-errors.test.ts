/**
 * A value PostgreSQL refuses for its column (SQLSTATE class 22, a data error) is
 * the request's fault: answered 400 `bad_request` (push: `rejected`), nothing
 * committed, never 503 `unavailable` (which tells the client to retry the same
 * thing forever). The value here: the rev after 2^31 − 1, past the `int` column,
 * with the task's rev set there directly in the database.
 */
import t from 'tap'
import { randomUUID } from 'node:crypto'
import postgres from 'postgres'
import { storageFault, asUnavailable, clientError } from '../../src/storage/errors.js'
import { api, registerOwner, startTestApp } from '../helpers/app.js'
import { TestSocket } from '../ws/helpers.js'

const MAX_INT = 2_147_483_647
const a = await startTestApp(t)
const owner = await registerOwner(a.url)
const orgId = owner.organization.id
const client = api(a.url, owner.accessToken)
const pg = postgres(a.databaseUrl, { max: 1, onnotice: () => {} })
t.teardown(() => pg.end())

/** A task whose rev is the last one an int holds. */
async function taskAtMaxRev(): Promise<string> {
  const id = randomUUID()
  t.equal((await client.post('/api/tasks', { id, title: 'full' })).status, 201)
  await pg`update tasks set rev = ${MAX_INT} where org_id = ${orgId} and id = ${id}`
  return id
}

t.test('the classifier: class 22 is bad_value, answered bad_request by both callers', async (t) => {
  const err = await pg`select ${String(MAX_INT + 1)}::int`.catch((e: unknown) => e)
  t.equal(storageFault(err), 'bad_value')
  t.match(asUnavailable(err), { code: 'bad_request' }, 'inside a mutation')
  t.match(clientError(err), { code: 'bad_request' }, 'at a transport')
})

t.test('PATCH, push and a socket op past the int rev: 4xx, nothing committed', async (t) => {
  const id = await taskAtMaxRev()
  const patch = await client.patch(`/api/tasks/${id}`, { op: { title: [4, '!'] }, baseRev: MAX_INT })
  t.same({ status: patch.status, code: patch.body.error?.code }, { status: 400, code: 'bad_request' }, 'PATCH')
  const push = await client.post('/api/sync/push', { clientId: randomUUID(), mutations: [{ seq: 1, kind: 'op', taskId: id, baseRev: MAX_INT, op: { priority: { set: 2 } } }] })
  t.equal(push.status, 200)
  t.match(push.body.results, [{ seq: 1, status: 'rejected', error: { code: 'bad_request' } }], 'push')
  const s = await TestSocket.ready(a.url, owner.accessToken)
  t.teardown(() => s.close())
  const answer = s.nextWhere((m) => m.seq === 1)
  s.send({ type: 'op', taskId: id, baseRev: MAX_INT, seq: 1, op: { status: { set: 'done' } } })
  t.match(await answer, { type: 'error', code: 'bad_request' }, 'socket')
  t.match((await client.get(`/api/tasks/${id}`)).body, { rev: MAX_INT, title: 'full', priority: 0, status: 'todo' }, 'nothing committed')
  const [{ n }] = await pg`select count(*)::int as n from task_ops where org_id = ${orgId} and task_id = ${id}`
  t.equal(n, 1, 'only the creation in the log')
})
