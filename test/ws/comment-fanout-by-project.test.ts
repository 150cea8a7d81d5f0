/**
 * A CommentNotice carries the task's project, so an instance reaches the
 * project's subscribers without reading the task; a notice without it (an older
 * publisher) still reaches them, at the cost of that read.
 */
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { startTestApp, registerOwner, api } from '../helpers/app.js'
import { orgChannel, type CommentNotice } from '../../src/bus/notices.js'
import { TestSocket, sleep } from './helpers.js'

t.test('comments reach project subscribers by the notice projectId', async (t) => {
  const a = await startTestApp(t)
  const b = await startTestApp(t, { databaseUrl: a.databaseUrl, redisPrefix: a.redisPrefix })
  const owner = await registerOwner(a.url)
  const orgId = owner.organization.id
  const P = (await api(a.url, owner.accessToken).post('/api/projects', { name: 'P' })).body.id as string
  const Q = (await api(a.url, owner.accessToken).post('/api/projects', { name: 'Q' })).body.id as string
  const notices: CommentNotice[] = []
  t.teardown(a.app.comments.onComment((n) => notices.push(n)))

  const writer = await TestSocket.ready(a.url, owner.accessToken)
  t.teardown(() => writer.close())
  let seq = 0
  const comment = async (msg: object) => {
    const s = ++seq
    return writer.request({ type: 'comment', seq: s, ...msg }, 'ack', (m) => m.seq === s)
  }
  const inP = randomUUID()
  const loose = randomUUID()
  await writer.request({ type: 'create', taskId: inP, projectId: P, seq: ++seq, task: { title: 'in P' } }, 'ack')
  await writer.request({ type: 'create', taskId: loose, seq: ++seq, task: { title: 'in no project' } }, 'ack')

  // Subscribed after the creations: instance B follows neither task, so it knows no project for them.
  const byP = await TestSocket.ready(b.url, owner.accessToken)
  const byQ = await TestSocket.ready(b.url, owner.accessToken)
  t.teardown(() => [byP, byQ].forEach((s) => s.close()))
  await byP.request({ type: 'subscribe', projectIds: [P] }, 'subscribed')
  await byQ.request({ type: 'subscribe', projectIds: [Q] }, 'subscribed')
  const seqB = b.app.sequencer
  const snapshot = seqB.snapshot.bind(seqB)
  let reads = 0
  seqB.snapshot = (o: string, id: string) => (reads++, snapshot(o, id))
  t.teardown(() => void (seqB.snapshot = snapshot))

  t.test('create, in a project and in none', async (t) => {
    const c1 = randomUUID()
    const c2 = randomUUID()
    await comment({ action: 'create', commentId: c2, taskId: loose, body: 'nobody by project' })
    await comment({ action: 'create', commentId: c1, taskId: inP, body: 'hello P' })
    t.match(await byP.next('comment', (m) => m.comment.id === c1), { taskId: inP, comment: { body: 'hello P' } })
    t.match(notices.find((n) => n.comment.id === c1), { projectId: P, action: 'create' })
    t.equal(notices.find((n) => n.comment.id === c2)?.projectId, null, 'a task in no project: projectId null')
    t.equal(b.app.gateway.routerFor(orgId).feeds.has(inP), false, 'B had no feed to learn the project from')
    await sleep(100)
    t.equal(byP.all('comment').filter((m) => m.taskId === loose).length, 0)
    t.equal(byQ.all('comment').length, 0)
    t.equal(reads, 0, 'no snapshot read on B')
  })

  t.test('edit and delete follow the task into its new project', async (t) => {
    const c = randomUUID()
    await comment({ action: 'create', commentId: c, taskId: inP, body: 'before the move' })
    await byP.next('comment', (m) => m.comment.id === c)
    await writer.request({ type: 'op', taskId: inP, baseRev: 1, seq: ++seq, op: { projectId: { set: Q } } }, 'ack')
    await byQ.next('snapshot', (m) => m.taskId === inP)
    await comment({ action: 'edit', commentId: c, taskId: inP, body: 'after the move' })
    t.match(await byQ.next('comment', (m) => m.comment.id === c), { comment: { body: 'after the move' } })
    await comment({ action: 'delete', commentId: c, taskId: inP })
    t.match(await byQ.next('comment', (m) => m.comment.id === c && m.comment.deleted), { taskId: inP })
    t.same(
      notices.filter((n) => n.comment.id === c).map((n) => [n.action, n.projectId]),
      [['create', P], ['edit', Q], ['delete', Q]],
    )
    await sleep(100)
    t.equal(byP.all('comment').filter((m) => m.comment.id === c).length, 1, 'P saw only the comment made while the task was there')
    t.equal(reads, 0, 'no snapshot read on B')
  })

  t.test('a notice without projectId (an older publisher) is routed after a read', async (t) => {
    const other = randomUUID()
    await writer.request({ type: 'create', taskId: other, projectId: P, seq: ++seq, task: { title: 'also in P' } }, 'ack')
    const c = randomUUID()
    await comment({ action: 'create', commentId: c, taskId: other, body: 'old style' })
    await byP.next('comment', (m) => m.comment.id === c)
    const legacy = { ...notices.find((n) => n.comment.id === c)!, from: 'an-older-instance' } as Partial<CommentNotice>
    delete legacy.projectId
    legacy.comment = { ...legacy.comment!, body: 'relayed', editCount: 1 }
    const before = reads
    // Instance B's feed for `other` was made by the creation op: drop it so only a read can tell the project.
    const router = b.app.gateway.routerFor(orgId)
    router.feeds.get(other)?.close()
    router.feeds.delete(other)
    await a.app.bus.publish(orgChannel(orgId), JSON.stringify(legacy))
    t.match(await byP.next('comment', (m) => m.comment.id === c && m.comment.body === 'relayed'), { taskId: other })
    t.equal(reads, before + 1, 'one snapshot read found the project')
  })
})
