/**
 * A socket cut with 4009 whose client never reads cannot finish the close
 * handshake: the server destroys its TCP connection WS_CLOSE_TIMEOUT_MS after the
 * close was queued (with the upgrade's response detached from the socket), and
 * the other sockets go on.
 */
import t from 'tap'
import { randomUUID } from 'node:crypto'
import type { Socket } from 'node:net'
import { startTestApp, registerOwner } from '../helpers/app.js'
import { TestSocket, until } from './helpers.js'

const CLOSE_TIMEOUT_MS = 500

t.test('a cut socket that never reads is destroyed after WS_CLOSE_TIMEOUT_MS; others are unaffected', async (t) => {
  const { app, url } = await startTestApp(t, {
    env: { WS_MAX_BUFFERED_BYTES: '65536', WS_CLOSE_TIMEOUT_MS: String(CLOSE_TIMEOUT_MS) },
  })
  const owner = await registerOwner(url)
  const writer = await TestSocket.ready(url, owner.accessToken)
  const taskId = randomUUID()
  // Every subscribe to this task queues its ~90 KB snapshot.
  await writer.request({ type: 'create', taskId, seq: 1, task: { description: 'x'.repeat(90_000) } }, 'ack')
  const slow = await TestSocket.ready(url, owner.accessToken)
  const fast = await TestSocket.ready(url, owner.accessToken)
  for (const s of [slow, fast]) await s.request({ type: 'subscribe', taskIds: [taskId] }, 'subscribed')

  const session = [...app.gateway.sessions].find((s) => s.clientId === slow.clientId)!
  const serverRaw = (session.ws as unknown as { _socket: Socket & { _httpMessage?: unknown } })._socket
  t.notOk(serverRaw._httpMessage, "the upgrade's response is no longer held by the socket")
  let closeQueuedAt = 0
  let destroyedAt = 0
  const originalClose = session.ws.close.bind(session.ws)
  session.ws.close = (code?: number, reason?: string | Buffer) => {
    closeQueuedAt ||= Date.now()
    originalClose(code, reason)
  }
  serverRaw.once('close', () => (destroyedAt = Date.now()))
  const connectionsBefore = await connections(app.server)

  // The slow client never reads again; its requests fill the server's send buffer until it is cut.
  const clientRaw = (slow.ws as unknown as { _socket: Socket })._socket
  clientRaw.pause()
  for (let i = 0; i < 150; i++) slow.send({ type: 'subscribe', taskIds: [taskId] })
  await until(() => session.outbox.closing, 'the slow socket cut')
  await until(() => closeQueuedAt > 0, 'the 4009 close handed to ws')
  t.ok(serverRaw.writableLength > 0, 'the close frame is stuck behind unsent data')

  await until(() => destroyedAt > 0, 'the server to destroy the connection', 20_000)
  const waited = destroyedAt - closeQueuedAt
  t.ok(waited >= CLOSE_TIMEOUT_MS - 50, `destroyed by the close timeout, not earlier (${waited} ms)`)
  t.ok(waited < CLOSE_TIMEOUT_MS + 10_000, `destroyed within the configured timeout, far from 30 s (${waited} ms)`)
  t.ok(serverRaw.destroyed, 'the TCP socket is destroyed')
  await until(() => !app.gateway.sessions.has(session), 'the gateway forgot the socket')
  t.equal(await connections(app.server), connectionsBefore - 1, 'the server holds one connection fewer')

  // The others go on as before.
  let rev = 1
  for (let seq = 2; seq <= 4; seq++) {
    rev = (await writer.request({ type: 'op', taskId, baseRev: rev, seq, op: { title: [`${seq}`] } }, 'ack', (m) => m.seq === seq)).rev
    t.equal((await fast.next('op', (m) => m.rev === rev)).rev, rev)
  }
  t.equal(app.gateway.socketCount, 2)

  // Reading at last, the slow client finds its connection gone.
  clientRaw.resume()
  const closed = await slow.closed
  t.ok([4009, 1006].includes(closed.code), `the slow client sees the end (${closed.code})`)
  t.equal(slow.all('op').length, 0, 'nothing was queued for it after the cut')
  writer.close()
  fast.close()
})

function connections(server: { getConnections(cb: (err: Error | null, n: number) => void): void }): Promise<number> {
  return new Promise((resolve, reject) => server.getConnections((err, n) => (err ? reject(err) : resolve(n))))
}
