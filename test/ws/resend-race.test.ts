/**
 * A resend that lost the race to its own first attempt on another instance is
 * acked in its place in the stream: when that instance's socket has not yet
 * received the commit (the publication is late), the ack waits for the ops
 * before it and the op is not echoed back afterwards. Found by the chaos
 * checker (an SDK resent on a new socket while its old, paused instance woke
 * up and committed the first attempt).
 */
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { startTestApp, registerOwner } from '../helpers/app.js'
import { TestSocket, type Msg } from './helpers.js'

t.test('a duplicate ack ahead of the socket waits for its place; no echo follows', async (t) => {
  const a = await startTestApp(t)
  // B learns of A's commits by publication, or by its latest-rev probe when one is lost.
  const b = await startTestApp(t, { databaseUrl: a.databaseUrl, redisPrefix: a.redisPrefix, env: { WS_PROBE_MS: '300' } })
  const owner = await registerOwner(a.url)
  const other = await TestSocket.ready(a.url, owner.accessToken)
  const taskId = randomUUID()
  await other.request({ type: 'create', taskId, seq: 1, task: { title: 'a' } }, 'ack')
  const onB = await TestSocket.ready(b.url, owner.accessToken)
  await onB.request({ type: 'subscribe', taskIds: [taskId] }, 'subscribed')
  // The same client on A (its old socket, say): it commits seq 7 first, and A's publication of it is lost.
  const onA = await TestSocket.ready(a.url, owner.accessToken, onB.clientId)
  const publish = a.app.bus.publish
  let dropped = 0
  a.app.bus.publish = async function (this: typeof a.app.bus, channel: string, payload: string) {
    if (dropped === 0 && JSON.parse(payload).kind === 'op') return void dropped++
    return publish.call(this, channel, payload)
  }
  t.teardown(() => void (a.app.bus.publish = publish))
  const op = { type: 'op', taskId, baseRev: 1, seq: 7, op: { title: [1, 'b'] } }
  t.equal((await onA.request(op, 'ack', (m) => m.seq === 7)).rev, 2)
  t.equal(dropped, 1)

  // The resend on B: a duplicate of rev 2, which B's socket has not received yet.
  const ack = await onB.request(op, 'ack', (m) => m.seq === 7)
  t.equal(ack.rev, 2)
  t.notOk(ack.noop)
  // A later op by someone else bounds what B's socket gets for rev 2.
  await other.request({ type: 'op', taskId, baseRev: 2, seq: 2, op: { title: [2, 'c'] } }, 'ack', (m) => m.seq === 2)
  await onB.next('op', (m) => m.rev === 3)
  const stream = onB.log.filter((m: Msg) => m.taskId === taskId && ['snapshot', 'op', 'ack'].includes(m.type)).map((m) => `${m.type} ${m.rev}`)
  t.same(stream, ['snapshot 1', 'ack 2', 'op 3'], 'rev 2 comes once, as the ack, in rev order')
  for (const s of [other, onA, onB]) s.close()
})
