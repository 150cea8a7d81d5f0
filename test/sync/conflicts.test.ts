/**
 * The conflict queue on two instances: concurrent status sets with `cancelled`
 * and differing assignees are recorded by the sequencer, listed, resolved on one
 * instance and fanned out to a socket on the other; the resolution is an op in
 * the log and in history; resolved conflicts stay for audit.
 */
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { startTestApp, registerOwner, addMember, api } from '../helpers/app.js'
import { TestSocket } from '../ws/helpers.js'
import { loadHistory } from '../../src/storage/tasks.js'

const a = await startTestApp(t)
const b = await startTestApp(t, { databaseUrl: a.databaseUrl, redisPrefix: a.redisPrefix })
const owner = await registerOwner(a.url)
const member = await addMember(a.url, owner.accessToken, 'member')
const viewer = await addMember(a.url, owner.accessToken, 'viewer')
const orgId = owner.organization.id
const ownerA = api(a.url, owner.accessToken)
const memberB = api(b.url, member.accessToken)

let seq = 0
const ownerClient = randomUUID()
const memberClient = randomUUID()
async function push(client: typeof ownerA, clientId: string, m: object) {
  const res = await client.post('/api/sync/push', { clientId, mutations: [{ seq: ++seq, ...m }] })
  return res.body.results[0]
}

/** A task with one status conflict and one assignee conflict, both based on rev 1. */
async function conflictedTask(): Promise<string> {
  const taskId = randomUUID()
  await push(ownerA, ownerClient, { kind: 'create', taskId, task: { title: 'contested' } })
  // Two people, offline from rev 1, on two instances.
  await push(ownerA, ownerClient, { kind: 'op', taskId, baseRev: 1, op: { status: { set: 'cancelled' }, assigneeId: { set: owner.user.id } } })
  await push(memberB, memberClient, { kind: 'op', taskId, baseRev: 1, op: { status: { set: 'done' }, assigneeId: { set: member.user.id } } })
  return taskId
}

t.test('recorded, listed, resolved, fanned out, kept for audit', async (t) => {
  const taskId = await conflictedTask()
  const task = await a.app.sequencer.snapshot(orgId, taskId)
  t.same([task!.rev, task!.status, task!.assigneeId], [3, 'cancelled', member.user.id], 'cancelled committed first stays; last assignee wins')

  const list = await api(a.url, viewer.accessToken).get(`/api/sync/conflicts?taskId=${taskId}`)
  t.equal(list.status, 200, 'a viewer may read the queue')
  const byField = Object.fromEntries(list.body.items.map((c: any) => [c.field, c]))
  t.same(
    [byField.status?.committedValue, byField.status?.incomingValue, byField.assigneeId?.committedValue, byField.assigneeId?.incomingValue],
    ['cancelled', 'done', owner.user.id, member.user.id],
  )
  t.ok(list.body.items.every((c: any) => c.status === 'open' && c.committedRev === 2 && c.incomingRev === 3 && c.incomingUserId === member.user.id))

  const forbidden = await api(a.url, viewer.accessToken).post(`/api/sync/conflicts/${byField.status.id}/resolve`, { choose: 'incoming' })
  t.same([forbidden.status, forbidden.body.error.code], [403, 'forbidden'], 'a viewer cannot resolve')
  const invalid = await ownerA.post(`/api/sync/conflicts/${byField.assigneeId.id}/resolve`, { value: 'not-a-uuid' })
  t.same([invalid.status, invalid.body.error.code], [422, 'invalid_op'], 'an invalid value is refused')
  for (const body of [{}, { choose: 'incoming', value: 'done' }, { choose: 'both' }]) {
    const bad = await ownerA.post(`/api/sync/conflicts/${byField.status.id}/resolve`, body)
    t.same([bad.status, bad.body.error.code], [400, 'bad_request'], `bad body ${JSON.stringify(body)}`)
  }

  // A subscriber on the other instance sees the resolution as an ordinary op.
  const socket = await TestSocket.ready(b.url, member.accessToken)
  t.teardown(() => socket.ws.close())
  socket.send({ type: 'subscribe', taskIds: [taskId] })
  await socket.next('subscribed')

  const resolved = await ownerA.post(`/api/sync/conflicts/${byField.status.id}/resolve`, { choose: 'incoming' })
  t.equal(resolved.status, 200)
  t.same(
    [resolved.body.status, resolved.body.resolution, resolved.body.resolvedBy, resolved.body.resolvedRev],
    ['resolved', { value: 'done', choose: 'incoming' }, owner.user.id, 4],
  )
  t.ok(resolved.body.resolvedAt)
  const op = await socket.next('op', (m) => m.taskId === taskId && m.rev === 4)
  t.same(op.op, { status: { set: 'done' } }, 'fanned out across instances')
  t.equal((await a.app.sequencer.snapshot(orgId, taskId))!.status, 'done')
  const logged = await a.app.sequencer.opsSince(orgId, taskId, 4, 10)
  t.same(logged.map((o) => [o.rev, o.op]), [[4, { status: { set: 'done' } }]], 'in the op log')
  const history = await loadHistory(a.app.database, orgId, taskId, 4, 10)
  t.same(history.map((h) => [h.rev, h.changes.status]), [[4, { from: 'cancelled', to: 'done' }]], 'and in history')

  const retry = await memberB.post(`/api/sync/conflicts/${byField.status.id}/resolve`, { value: 'done' })
  t.same([retry.status, retry.body.resolvedRev], [200, 4], 'the same resolution again answers it (a safe retry)')
  const other = await memberB.post(`/api/sync/conflicts/${byField.status.id}/resolve`, { choose: 'committed' })
  t.same([other.status, other.body.error.code], [409, 'already_exists'], 'another value after the fact is refused')
  t.equal(other.body.error.details.conflict.resolvedRev, 4)

  const assignee = await memberB.post(`/api/sync/conflicts/${byField.assigneeId.id}/resolve`, { value: null })
  t.same([assignee.status, assignee.body.resolvedRev, assignee.body.resolution], [200, 5, { value: null }], 'any valid value, null included')
  t.equal((await a.app.sequencer.snapshot(orgId, taskId))!.assigneeId, null)

  const open = await ownerA.get(`/api/sync/conflicts?taskId=${taskId}`)
  t.same(open.body.items, [], 'the queue is empty')
  const audit = await ownerA.get(`/api/sync/conflicts?taskId=${taskId}&status=resolved`)
  t.equal(audit.body.items.length, 2, 'resolved conflicts stay for audit')
  const one = await ownerA.get(`/api/sync/conflicts/${byField.status.id}`)
  t.equal(one.body.status, 'resolved')
})

t.test('pagination, deleted tasks, other organizations', async (t) => {
  const [t1, t2] = [await conflictedTask(), await conflictedTask()]
  const seen: string[] = []
  let cursor: string | null = null
  do {
    const page: any = await ownerA.get(`/api/sync/conflicts?limit=1${cursor ? `&cursor=${cursor}` : ''}`)
    t.equal(page.status, 200)
    seen.push(...page.body.items.map((c: any) => c.id))
    cursor = page.body.nextCursor
  } while (cursor)
  t.equal(seen.length, 4, 'four open conflicts, one page each')
  t.equal(new Set(seen).size, 4, 'each once')

  const deleted = await push(ownerA, ownerClient, { kind: 'op', taskId: t2, baseRev: 3, op: { delete: true } })
  t.equal(deleted.status, 'applied')
  const open = await ownerA.get('/api/sync/conflicts')
  t.same([...new Set(open.body.items.map((c: any) => c.taskId))], [t1], 'the queue leaves out conflicts of deleted tasks')
  const all = await ownerA.get('/api/sync/conflicts?status=all')
  const gone = all.body.items.find((c: any) => c.taskId === t2)
  const res = await ownerA.post(`/api/sync/conflicts/${gone.id}/resolve`, { choose: 'committed' })
  t.same([res.status, res.body.error.code], [410, 'task_deleted'])

  const stranger = await registerOwner(a.url)
  const hidden = await api(a.url, stranger.accessToken).post(`/api/sync/conflicts/${seen[0]}/resolve`, { choose: 'committed' })
  t.same([hidden.status, hidden.body.error.code], [404, 'not_found'], 'another organization cannot see it')
  t.same((await api(a.url, stranger.accessToken).get('/api/sync/conflicts?status=all')).body.items, [])
  const badCursor = await ownerA.get('/api/sync/conflicts?cursor=nonsense')
  t.equal(badCursor.status, 400)
})
