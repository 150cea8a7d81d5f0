/**
 * Issue #11, defect 4: a request that never finishes is not held forever. The
 * head must arrive within HTTP_HEADERS_TIMEOUT_MS and the whole request within
 * HTTP_REQUEST_TIMEOUT_MS (else 408 in the contract's shape, and the connection
 * closes); an idle keep-alive connection closes after HTTP_IDLE_TIMEOUT_MS; a
 * WebSocket upgrade the server cannot complete in time is answered 503 and closed.
 */
import t from 'tap'
import { connect } from 'node:net'
import postgres from 'postgres'
import { startTestApp, registerOwner } from '../helpers/app.js'
import { rawRequest, parseResponse } from '../helpers/raw-http.js'

const env = { HTTP_HEADERS_TIMEOUT_MS: '1000', HTTP_REQUEST_TIMEOUT_MS: '1500', HTTP_IDLE_TIMEOUT_MS: '1000' }
// Far beyond every timeout above: a socket still open then is held.
const HELD_MS = 15_000

t.test('a body shorter than its Content-Length: 408, then closed', async (t) => {
  const { url } = await startTestApp(t, { redis: false, env })
  const port = Number(new URL(url).port)
  const started = Date.now()
  const res = await rawRequest(port, 'POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"e', HELD_MS)
  t.ok(res.closed, 'the connection is closed')
  t.equal(res.status, 408)
  t.same(res.json, { error: { code: 'bad_request', message: 'the request was not received in time' } })
  t.ok(Date.now() - started < HELD_MS, `answered after ${Date.now() - started} ms`)
})

t.test('a head that never ends: 408, then closed; a silent connection is closed', async (t) => {
  const { url } = await startTestApp(t, { redis: false, env })
  const port = Number(new URL(url).port)
  const head = await rawRequest(port, 'GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ', HELD_MS)
  t.ok(head.closed)
  t.equal(head.status, 408)
  t.equal(head.json?.error?.code, 'bad_request')
  const silent = await rawRequest(port, '', HELD_MS)
  t.ok(silent.closed, 'a connection that sends nothing is closed')
  const upgrade = await rawRequest(port, 'GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n', HELD_MS)
  t.ok(upgrade.closed, 'an upgrade whose head never ends is closed too')
  t.equal(upgrade.status, 408)
})

t.test('an idle keep-alive connection is closed after HTTP_IDLE_TIMEOUT_MS', async (t) => {
  const { url } = await startTestApp(t, { redis: false, env })
  const port = Number(new URL(url).port)
  const socket = connect(port, '127.0.0.1')
  let text = ''
  socket.on('data', (d) => (text += d))
  let held = false
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()))
  socket.write('GET /health HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n')
  const timer = setTimeout(() => {
    held = true
    socket.destroy()
  }, HELD_MS)
  await closed
  clearTimeout(timer)
  t.equal(parseResponse(text)?.status, 200, 'the request was answered')
  t.notOk(held, 'then the idle connection was closed by the server')
})

t.test('a WebSocket upgrade the server cannot complete in time: 503, closed', async (t) => {
  const { url, databaseUrl } = await startTestApp(t, { redis: false, env })
  const owner = await registerOwner(url)
  const port = Number(new URL(url).port)
  // The token check reads the devices table: hold it locked so the upgrade cannot finish.
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {} })
  t.teardown(() => sql.end())
  let release!: () => void
  const released = new Promise<void>((r) => (release = r))
  const locked = new Promise<void>((ready) => {
    void sql.begin(async (tx) => {
      await tx`lock table devices in access exclusive mode`
      ready()
      await released
    })
  })
  await locked
  const res = await rawRequest(
    port,
    `GET /ws?access_token=${owner.accessToken} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`,
    HELD_MS,
  )
  release()
  t.ok(res.closed, 'the upgrade is not held')
  t.equal(res.status, 503)
  t.equal(res.json?.error?.code, 'unavailable')
})
