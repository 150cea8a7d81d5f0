/**
 * A socket that stops reading is cut once its unsent data passes
 * WS_MAX_BUFFERED_BYTES: nothing more is queued for it, a 4009 close follows
 * what was already queued, and the other sockets are not affected.
 */
import t from 'tap'
import { randomUUID } from 'node:crypto'
import type { Socket } from 'node:net'
import { startTestApp, registerOwner } from '../helpers/app.js'
import { TestSocket, until } from './helpers.js'

t.test('a socket that stops reading is closed with 4009; others are unaffected', async (t) => {
  const { app, url } = await startTestApp(t, { env: { WS_MAX_BUFFERED_BYTES: '65536' } })
  const owner = await registerOwner(url)
  const writer = await TestSocket.ready(url, owner.accessToken)
  const taskId = randomUUID()
  // A task whose snapshot is about 90 KB: every subscribe to it queues that much.
  await writer.request({ type: 'create', taskId, seq: 1, task: { description: 'x'.repeat(90_000) } }, 'ack')

  const slow = await TestSocket.ready(url, owner.accessToken)
  const fast = await TestSocket.ready(url, owner.accessToken)
  for (const s of [slow, fast]) await s.request({ type: 'subscribe', taskIds: [taskId] }, 'subscribed')
  const serverSide = () => [...app.gateway.sessions].find((s) => s.clientId === slow.clientId)

  // The slow client stops reading (its kernel buffers fill, then the server's), but keeps asking.
  const raw = (slow.ws as unknown as { _socket: Socket })._socket
  raw.pause()
  for (let i = 0; i < 150; i++) slow.send({ type: 'subscribe', taskIds: [taskId] })
  await until(() => serverSide()?.outbox.closing === true, 'the slow socket cut')
  const queuedAtCut = serverSide()!.outbox.unsentBytes

  // Others go on as before.
  let rev = 1
  for (let seq = 2; seq <= 6; seq++) {
    rev = (await writer.request({ type: 'op', taskId, baseRev: rev, seq, op: { title: [`${seq}`] } }, 'ack', (m) => m.seq === seq)).rev
    t.equal((await fast.next('op', (m) => m.rev === rev)).rev, rev)
  }
  t.ok(serverSide()!.outbox.unsentBytes <= queuedAtCut, 'nothing more was queued for the cut socket')

  // Reading again, the slow client gets what was queued before the cut, then 4009.
  raw.resume()
  const closed = await slow.closed
  t.equal(closed.code, 4009)
  t.ok(slow.all('snapshot').length >= 1)
  t.equal(slow.all('op').length, 0, 'ops committed after the cut were not queued')
  await until(() => serverSide() === undefined, 'the server forgot the socket')
  const metrics = await (await fetch(url + '/metrics')).text()
  t.match(metrics, /tasksync_ws_slow_closed_total\{[^}]*\} 1/)
  writer.close()
  fast.close()
})
