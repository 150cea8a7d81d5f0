/**
 * Resume with `since` (guarantee 4): exactly the missed ops, or a snapshot past
 * the replay window, `task_deleted`, `sync_required` for a rev the server never
 * had; and ops committed while the resume is served arrive once, after it.
 */
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { startTestApp, registerOwner } from '../helpers/app.js'
import { TestSocket, type Msg } from './helpers.js'

t.test('resume', async (t) => {
  const { app, url } = await startTestApp(t, { env: { REPLAY_WINDOW_OPS: '10' } })
  const owner = await registerOwner(url)
  const orgId = owner.user.orgId
  const writer = await TestSocket.ready(url, owner.accessToken)
  let seq = 0

  const newTask = async (ops: number) => {
    const taskId = randomUUID()
    await writer.request({ type: 'create', taskId, seq: ++seq, task: { title: '' } }, 'ack')
    await write(taskId, ops)
    return taskId
  }
  /** n ops, each on the rev the previous one was acked with (text inserted at 0 applies to any state). */
  async function write(taskId: string, n: number): Promise<number> {
    let rev = (await app.sequencer.snapshot(orgId, taskId))!.rev
    for (let i = 0; i < n; i++) {
      const s = ++seq
      rev = (await writer.request({ type: 'op', taskId, baseRev: rev, seq: s, op: { title: [`${s},`] } }, 'ack', (m) => m.seq === s)).rev
    }
    return rev
  }
  const stream = (s: TestSocket, taskId: string) => s.log.filter((m) => m.taskId === taskId && m.type !== 'ack')

  t.test('since within the window: exactly the missed ops, in order, then subscribed', async (t) => {
    const taskId = await newTask(6) // rev 7
    const s = await TestSocket.ready(url, owner.accessToken)
    const sub = await s.request({ type: 'subscribe', since: { [taskId]: 3 } }, 'subscribed')
    t.same(sub, { type: 'subscribed', taskIds: [taskId], projectIds: [], all: false })
    const got = stream(s, taskId)
    t.same(got.map((m) => [m.type, m.rev]), [['op', 4], ['op', 5], ['op', 6], ['op', 7]])
    const log = await app.sequencer.opsSince(orgId, taskId, 4, 100)
    t.same(got, log, 'the ops as logged')
    // And live from there.
    await write(taskId, 1)
    t.equal((await s.next('op', (m) => m.taskId === taskId && m.rev === 8)).rev, 8)
    s.close()
  })

  t.test('since equal to the current rev: nothing to send', async (t) => {
    const taskId = await newTask(2)
    const s = await TestSocket.ready(url, owner.accessToken)
    await s.request({ type: 'subscribe', taskIds: [taskId], since: { [taskId]: 3 } }, 'subscribed')
    t.same(stream(s, taskId), [])
    s.close()
  })

  t.test('past the replay window: a snapshot', async (t) => {
    const taskId = await newTask(14) // rev 15, window 10
    const s = await TestSocket.ready(url, owner.accessToken)
    await s.request({ type: 'subscribe', taskIds: [taskId], since: { [taskId]: 2 } }, 'subscribed')
    const got = stream(s, taskId)
    t.same(got.map((m) => m.type), ['snapshot'])
    t.equal(got[0].rev, 15)
    t.same(got[0].task, await app.sequencer.snapshot(orgId, taskId))
    s.close()
  })

  t.test('a since ahead of the task: sync_required, not subscribed', async (t) => {
    const taskId = await newTask(1)
    const s = await TestSocket.ready(url, owner.accessToken)
    const sub = await s.request({ type: 'subscribe', since: { [taskId]: 9 } }, 'subscribed')
    t.same(sub.taskIds, [])
    t.match(stream(s, taskId), [{ type: 'sync_required', taskId }])
    s.close()
  })

  t.test('a deleted task: task_deleted instead of ops or a snapshot', async (t) => {
    const taskId = await newTask(2)
    const s = ++seq
    await writer.request({ type: 'op', taskId, baseRev: 3, seq: s, op: { delete: true } }, 'ack', (m) => m.seq === s)
    const r = await TestSocket.ready(url, owner.accessToken)
    const sub = await r.request({ type: 'subscribe', since: { [taskId]: 1 } }, 'subscribed')
    t.same(sub.taskIds, [])
    t.same(stream(r, taskId), [{ type: 'task_deleted', taskId, rev: 4 }])
    r.close()
  })

  t.test('ops committed during the snapshot read and the replay come once, after them', async (t) => {
    const taskId = await newTask(4) // rev 5
    const other = await TestSocket.ready(url, owner.accessToken)
    let otherSeq = 0
    const commitNow = async () => {
      const s = ++otherSeq
      await other.request({ type: 'op', taskId, baseRev: 5, seq: s, op: { title: ['x'] } }, 'ack', (m) => m.seq === s)
    }
    // Test hooks on the real sequencer: commit an op right after each read of the resume.
    const { snapshots, opsSince } = app.sequencer
    t.teardown(() => Object.assign(app.sequencer, { snapshots, opsSince }))
    let armed = true
    app.sequencer.snapshots = async function (this: typeof app.sequencer, ...args: Parameters<typeof snapshots>) {
      const result = await snapshots.apply(this, args)
      if (armed) await commitNow() // rev 6: after the snapshot read
      return result
    }
    app.sequencer.opsSince = async function (this: typeof app.sequencer, ...args: Parameters<typeof opsSince>) {
      const result = await opsSince.apply(this, args)
      if (armed) {
        armed = false
        await commitNow() // rev 7: during the replay
      }
      return result
    }
    const s = await TestSocket.ready(url, owner.accessToken)
    await s.request({ type: 'subscribe', since: { [taskId]: 2 } }, 'subscribed')
    await s.next('op', (m) => m.taskId === taskId && m.rev === 7)
    Object.assign(app.sequencer, { snapshots, opsSince })
    await commitNow() // rev 8
    await s.next('op', (m) => m.taskId === taskId && m.rev === 8)
    t.same(stream(s, taskId).map((m: Msg) => [m.type, m.rev]), [3, 4, 5, 6, 7, 8].map((r) => ['op', r]))
    s.close()
    other.close()
  })

  t.test('several tasks in one subscribe, each answered, and subscribed lists them in request order', async (t) => {
    const ids = [await newTask(1), await newTask(3), await newTask(0)]
    const s = await TestSocket.ready(url, owner.accessToken)
    const sub = await s.request({ type: 'subscribe', taskIds: ids, since: { [ids[1]]: 2 } }, 'subscribed')
    t.same(sub.taskIds, ids)
    t.same(stream(s, ids[0]).map((m) => m.type), ['snapshot'])
    t.same(stream(s, ids[1]).map((m) => [m.type, m.rev]), [['op', 3], ['op', 4]])
    t.same(stream(s, ids[2]).map((m) => [m.type, m.rev]), [['snapshot', 1]])
    // Unsubscribed: nothing more arrives for it.
    t.same(await s.request({ type: 'unsubscribe', taskIds: [ids[0]] }, 'unsubscribed'), { type: 'unsubscribed', taskIds: [ids[0]], projectIds: [], all: false })
    await write(ids[0], 1)
    await write(ids[1], 1)
    await s.next('op', (m) => m.taskId === ids[1] && m.rev === 5)
    t.same(stream(s, ids[0]).map((m) => m.type), ['snapshot'])
    s.close()
  })
})
