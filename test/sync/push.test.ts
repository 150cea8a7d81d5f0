/**
 * POST /api/sync/push through the real app: per-mutation results in order,
 * rejections that do not block, idempotent resends, foreign clientIds, size
 * bounds, malformed batches, and a storage failure in the middle of a batch.
 */
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { sql } from 'drizzle-orm'
import { startTestApp, registerOwner, addMember, api } from '../helpers/app.js'

const a = await startTestApp(t, { env: { SYNC_PUSH_MAX_MUTATIONS: '20', SYNC_PUSH_MAX_BYTES: '8192' } })
const owner = await registerOwner(a.url)
const orgId = owner.organization.id
const client = api(a.url, owner.accessToken)
const snapshot = (taskId: string) => a.app.sequencer.snapshot(orgId, taskId)

t.test('a batch of valid, invalid and duplicate mutations', async (t) => {
  const clientId = randomUUID()
  const [t1, t2, missing] = [randomUUID(), randomUUID(), randomUUID()]
  const c1 = randomUUID()
  const batch = [
    { seq: 1, kind: 'create', taskId: t1, task: { title: 'one', tags: ['a'] } },
    { seq: 2, kind: 'op', taskId: t1, baseRev: 1, op: { priority: { set: 9 } } },
    { seq: 3, kind: 'op', taskId: t1, baseRev: 1, op: { status: { set: 'in_progress' } } },
    { seq: 4, kind: 'op', taskId: missing, baseRev: 0, op: { title: ['x'] } },
    { seq: 5, kind: 'create', taskId: t2, task: { title: 'two' } },
    { seq: 6, kind: 'op', taskId: t2, baseRev: 1, op: { delete: true } },
    { seq: 7, kind: 'op', taskId: t2, baseRev: 2, op: { title: [3, '!'] } },
    { seq: 8, kind: 'comment', taskId: t1, comment: { action: 'create', commentId: c1, body: 'first' } },
    { seq: 9, kind: 'comment', taskId: t1, comment: { action: 'edit', commentId: c1, body: 'first, edited' } },
    { seq: 10, kind: 'comment', taskId: t1, comment: { action: 'delete', commentId: randomUUID() } },
    { seq: 11, kind: 'create', taskId: t1, task: { title: 'again' } },
    { seq: 12, kind: 'op', taskId: t1, baseRev: 1, op: {} },
  ]
  const res = await client.post('/api/sync/push', { clientId, mutations: batch })
  t.equal(res.status, 200)
  const summary = res.body.results.map((r: any) => [r.seq, r.status, r.rev ?? r.error?.code ?? r.commentId])
  t.same(summary, [
    [1, 'applied', 1],
    [2, 'rejected', 'invalid_op'],
    [3, 'applied', 2],
    [4, 'rejected', 'not_found'],
    [5, 'applied', 1],
    [6, 'applied', 2],
    [7, 'rejected', 'task_deleted'],
    [8, 'applied', c1],
    [9, 'applied', c1],
    [10, 'rejected', 'not_found'],
    [11, 'rejected', 'already_exists'],
    [12, 'applied', 2],
  ], 'one result per mutation, in request order; rejections do not block what follows')
  t.ok(res.body.results.filter((r: any) => r.error).every((r: any) => typeof r.error.message === 'string' && r.error.message.length > 0))
  t.equal(await snapshot(missing), null, 'an edit of a missing task is never turned into a create')
  t.equal((await snapshot(t1))!.status, 'in_progress')

  const again = await client.post('/api/sync/push', { clientId, mutations: batch })
  t.equal(again.status, 200)
  t.same(
    again.body.results.map((r: any) => [r.seq, r.status, r.rev ?? r.error?.code ?? r.commentId]),
    summary.map(([seq, status, x]: any[]) => [seq, status === 'applied' ? 'duplicate' : status, x]),
    'a resend: committed ones are duplicates with their original rev, rejected ones are rejected again',
  )
  t.equal((await snapshot(t1))!.rev, 2, 'and nothing changed')

  const pulled = await client.get('/api/sync/pull')
  t.equal(pulled.body.lastSeq[clientId], 12, 'lastSeq is the highest committed seq of the clientId')
})

t.test('a clientId bound to another device: 403 and nothing committed', async (t) => {
  const clientId = randomUUID()
  const mine = await client.post('/api/sync/push', { clientId, mutations: [{ seq: 1, kind: 'create', taskId: randomUUID(), task: { title: 'mine' } }] })
  t.equal(mine.status, 200)
  const member = await addMember(a.url, owner.accessToken, 'member')
  const taskId = randomUUID()
  const res = await api(a.url, member.accessToken).post('/api/sync/push', { clientId, mutations: [{ seq: 2, kind: 'create', taskId, task: { title: 'theirs' } }] })
  t.equal(res.status, 403)
  t.equal(res.body.error.code, 'forbidden')
  t.equal(await snapshot(taskId), null)
})

t.test('a viewer gets per-mutation forbidden', async (t) => {
  const viewer = await addMember(a.url, owner.accessToken, 'viewer')
  const res = await api(a.url, viewer.accessToken).post('/api/sync/push', {
    clientId: randomUUID(),
    mutations: [{ seq: 1, kind: 'create', taskId: randomUUID(), task: { title: 'nope' } }],
  })
  t.equal(res.status, 200)
  t.same(res.body.results.map((r: any) => [r.status, r.error.code]), [['rejected', 'forbidden']])
})

t.test('oversized batches answer 413 too_large and commit nothing', async (t) => {
  const taskIds = Array.from({ length: 21 }, () => randomUUID())
  const many = await client.post('/api/sync/push', {
    clientId: randomUUID(),
    mutations: taskIds.map((taskId, i) => ({ seq: i + 1, kind: 'create', taskId, task: { title: 't' } })),
  })
  t.same([many.status, many.body.error.code], [413, 'too_large'], 'too many mutations')
  const big = await client.post('/api/sync/push', {
    clientId: randomUUID(),
    mutations: [{ seq: 1, kind: 'create', taskId: taskIds[0], task: { title: 'x', description: 'y'.repeat(9000) } }],
  })
  t.same([big.status, big.body.error.code], [413, 'too_large'], 'too many bytes')
  t.equal(await snapshot(taskIds[0]), null)
})

t.test('a malformed batch answers 400 and commits nothing', async (t) => {
  const taskId = randomUUID()
  const cases = [
    { clientId: 'not-a-uuid', mutations: [] },
    { clientId: randomUUID(), mutations: [{ seq: 1, kind: 'create', taskId, task: {} }, { seq: 2, kind: 'op', taskId, op: {} }] },
    { clientId: randomUUID(), mutations: [{ seq: 2, kind: 'create', taskId, task: {} }, { seq: 2, kind: 'op', taskId, baseRev: 1, op: {} }] },
    { clientId: randomUUID(), mutations: [{ seq: 1, kind: 'create', taskId, task: {} }, { seq: 2, kind: 'comment', taskId, comment: { action: 'edit', commentId: randomUUID() } }] },
    { clientId: randomUUID(), mutations: [{ seq: 1, kind: 'create', taskId, task: {} }, { seq: 2, kind: 'move', taskId }] },
  ]
  for (const body of cases) {
    const res = await client.post('/api/sync/push', body)
    t.same([res.status, res.body.error.code], [400, 'bad_request'], JSON.stringify(body).slice(0, 120))
  }
  t.equal(await snapshot(taskId), null)
  const unauth = await api(a.url).post('/api/sync/push', { clientId: randomUUID(), mutations: [] })
  t.equal(unauth.status, 401)
})

t.test('a storage failure stops the batch: 503, what came before stays, a resend acks it', async (t) => {
  // A database that refuses one particular write, as a failing disk would refuse any.
  await a.app.database.rows(sql.raw(`
    create function refuse_boom() returns trigger language plpgsql as $$
    begin if new.content->>'title' = 'boom' then raise exception 'disk on fire'; end if; return new; end $$;
    create trigger refuse_boom before insert on tasks for each row execute function refuse_boom();`))
  t.teardown(() => a.app.database.rows(sql.raw('drop trigger if exists refuse_boom on tasks')))
  const clientId = randomUUID()
  const ids = [randomUUID(), randomUUID(), randomUUID()]
  const batch = [
    { seq: 1, kind: 'create', taskId: ids[0], task: { title: 'fine' } },
    { seq: 2, kind: 'create', taskId: ids[1], task: { title: 'boom' } },
    { seq: 3, kind: 'create', taskId: ids[2], task: { title: 'after' } },
  ]
  const res = await client.post('/api/sync/push', { clientId, mutations: batch })
  t.equal(res.status, 503)
  t.equal(res.body.error.code, 'unavailable')
  t.same(res.body.error.details.results, [{ seq: 1, status: 'applied', rev: 1 }], 'the committed part is reported')
  t.ok(await snapshot(ids[0]), 'the first create stays committed')
  t.equal(await snapshot(ids[1]), null, 'the failing one left nothing')
  t.equal(await snapshot(ids[2]), null, 'nothing after the failure was tried')

  await a.app.database.rows(sql.raw('drop trigger refuse_boom on tasks'))
  const retry = await client.post('/api/sync/push', { clientId, mutations: batch })
  t.same(retry.body.results.map((r: any) => r.status), ['duplicate', 'applied', 'applied'], 'the resend acks the first as a duplicate')
})
