/**
 * Project and org-wide subscriptions across two instances: tasks created or
 * moved in later arrive (rev 1 as an op, a moved-in task as a snapshot), a task
 * moved out stops after its move; comments and presence reach every socket
 * covering the task, never the sender; presence fades on silence and on close.
 */
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { startTestApp, registerOwner, api } from '../helpers/app.js'
import { TestSocket, sleep, type Msg } from './helpers.js'

t.test('project and org subscriptions, comments, presence', async (t) => {
  const env = { WS_PRESENCE_TTL_MS: '700' }
  const a = await startTestApp(t, { env })
  const b = await startTestApp(t, { databaseUrl: a.databaseUrl, redisPrefix: a.redisPrefix, env })
  const owner = await registerOwner(a.url)
  const project = await api(a.url, owner.accessToken).post('/api/projects', { name: 'Launch' })
  t.equal(project.status, 201)
  const P = project.body.id as string

  const writer = await TestSocket.ready(a.url, owner.accessToken)
  const byProject = await TestSocket.ready(b.url, owner.accessToken)
  const byOrg = await TestSocket.ready(a.url, owner.accessToken)
  t.same(await byProject.request({ type: 'subscribe', projectIds: [P] }, 'subscribed'), { type: 'subscribed', taskIds: [], projectIds: [P], all: false })
  t.same(await byOrg.request({ type: 'subscribe', all: true }, 'subscribed'), { type: 'subscribed', taskIds: [], projectIds: [], all: true })
  t.teardown(() => [writer, byProject, byOrg].forEach((s) => s.close()))
  let seq = 0
  const op = async (taskId: string, baseRev: number, body: object) => {
    const s = ++seq
    return (await writer.request({ type: 'op', taskId, baseRev, seq: s, op: body }, 'ack', (m) => m.seq === s)).rev as number
  }
  const of = (s: TestSocket, taskId: string) => s.log.filter((m: Msg) => m.taskId === taskId && m.type !== 'ack').map((m) => [m.type, m.rev ?? null])

  const t1 = randomUUID()
  const t2 = randomUUID()
  t.test('a task created in the project arrives as its creation op', async (t) => {
    await writer.request({ type: 'create', taskId: t1, projectId: P, seq: ++seq, task: { title: 'in P' } }, 'ack')
    const created = await byProject.next('op', (m) => m.taskId === t1)
    t.match(created, { rev: 1, op: { title: ['in P'], projectId: { set: P } }, clientId: writer.clientId })
    t.equal((await byOrg.next('op', (m) => m.taskId === t1)).rev, 1)
    t.equal(writer.all('op').length, 0, 'the creator gets its ack, not an echo')
  })

  t.test('a task moved into the project arrives as a snapshot, then its ops', async (t) => {
    await writer.request({ type: 'create', taskId: t2, seq: ++seq, task: { title: 'loose' } }, 'ack')
    await byOrg.next('op', (m) => m.taskId === t2 && m.rev === 1)
    await op(t2, 1, { projectId: { set: P } })
    const snap = await byProject.next('snapshot', (m) => m.taskId === t2)
    t.match(snap, { rev: 2, task: { id: t2, projectId: P, title: 'loose' } })
    await op(t2, 2, { title: [5, '!'] })
    await byProject.next('op', (m) => m.taskId === t2 && m.rev === 3)
    t.same(of(byProject, t2), [['snapshot', 2], ['op', 3]], 'no op before the snapshot')
    await byOrg.next('op', (m) => m.taskId === t2 && m.rev === 3)
    t.same(of(byOrg, t2), [['op', 1], ['op', 2], ['op', 3]])
  })

  t.test('a task moved out of the project: its move arrives, then nothing', async (t) => {
    await op(t1, 1, { projectId: { set: null } })
    await byProject.next('op', (m) => m.taskId === t1 && m.rev === 2)
    await op(t1, 2, { title: [4, '?'] })
    await byOrg.next('op', (m) => m.taskId === t1 && m.rev === 3)
    await op(t2, 3, { priority: { set: 2 } }) // a later op elsewhere in P, as a marker
    await byProject.next('op', (m) => m.taskId === t2 && m.rev === 4)
    t.same(of(byProject, t1), [['op', 1], ['op', 2]])
  })

  t.test('comments reach every socket covering the task, the author gets an ack', async (t) => {
    await writer.request({ type: 'subscribe', taskIds: [t2] }, 'subscribed')
    const commentId = randomUUID()
    const s = ++seq
    const ack = await writer.request({ type: 'comment', action: 'create', commentId, taskId: t2, seq: s, body: 'looks good' }, 'ack', (m) => m.seq === s)
    t.same(ack, { type: 'ack', taskId: t2, seq: s, commentId })
    for (const c of [byProject, byOrg]) {
      const m = await c.next('comment', (m) => m.comment.id === commentId)
      t.match(m, { taskId: t2, comment: { id: commentId, body: 'looks good', authorId: owner.user.id, deleted: false } })
    }
    const e = ++seq
    await writer.request({ type: 'comment', action: 'edit', commentId, taskId: t2, seq: e, body: 'looks great' }, 'ack', (m) => m.seq === e)
    t.match(await byProject.next('comment', (m) => m.comment.editCount === 1), { comment: { body: 'looks great' } })
    const d = ++seq
    await writer.request({ type: 'comment', action: 'delete', commentId, taskId: t2, seq: d }, 'ack', (m) => m.seq === d)
    t.match(await byOrg.next('comment', (m) => m.comment.deleted === true), { comment: { id: commentId } })
    t.equal(writer.all('comment').length, 0, 'no echo to the author')
    const bad = await writer.request({ type: 'comment', action: 'create', commentId: randomUUID(), taskId: randomUUID(), seq: ++seq, body: 'x' }, 'error')
    t.equal(bad.code, 'not_found')
  })

  t.test('presence crosses instances, is never echoed, fades on silence and on close', async (t) => {
    const refused = await byProject.request({ type: 'presence', taskId: t1, state: { field: 'title' } }, 'error')
    t.equal(refused.code, 'bad_request', 'presence needs a subscription covering the task')
    byProject.send({ type: 'presence', taskId: t2, state: { field: 'title', cursor: 3 } })
    for (const c of [writer, byOrg]) {
      const p = await c.next('presence', (m) => m.taskId === t2 && m.state !== null)
      t.same(p, { type: 'presence', taskId: t2, userId: owner.user.id, clientId: byProject.clientId, state: { field: 'title', cursor: 3 } })
    }
    // Silence: every instance clears it after the TTL.
    for (const c of [writer, byOrg]) t.match(await c.next('presence', (m) => m.taskId === t2 && m.state === null), { clientId: byProject.clientId })
    // Sent again, then the socket closes: cleared at once.
    const started = Date.now()
    byOrg.send({ type: 'presence', taskId: t2, state: { typing: true } })
    await byProject.next('presence', (m) => m.clientId === byOrg.clientId && m.state !== null)
    byOrg.close()
    await byProject.next('presence', (m) => m.clientId === byOrg.clientId && m.state === null)
    t.ok(Date.now() - started < 5000)
    t.equal(byProject.all('presence').filter((m) => m.clientId === byProject.clientId).length, 0, 'never its own')
    const big = await writer.request({ type: 'presence', taskId: t2, state: { blob: 'x'.repeat(5000) } }, 'error')
    t.equal(big.code, 'too_large')
  })

  t.test('unsubscribe from the project: nothing more', async (t) => {
    t.same(await byProject.request({ type: 'unsubscribe', projectIds: [P] }, 'unsubscribed'), { type: 'unsubscribed', taskIds: [], projectIds: [P], all: false })
    // A socket on the same instance, subscribed by id, shows when the op has fanned out there.
    const marker = await TestSocket.ready(b.url, owner.accessToken)
    await marker.request({ type: 'subscribe', taskIds: [t2] }, 'subscribed')
    const before = byProject.log.length
    const rev = await op(t2, 4, { title: ['>'] })
    await marker.next('op', (m) => m.rev === rev)
    // The op fans out to every local socket at once: anything for byProject was queued before this pong.
    await byProject.request({ type: 'ping' }, 'pong')
    t.equal(byProject.log.slice(before).filter((m) => m.taskId === t2).length, 0)
    marker.close()
  })
})
