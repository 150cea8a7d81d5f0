/**
 * load/raw-ws.ts against the `ws` server the tasksync server runs: the
 * handshake (and its refusals), messages of every length encoding both ways
 * (the server refuses unmasked client frames, so each one it reads was
 * masked), fragmented messages, ping, the close handshake both ways, and a
 * protocol violation from the server.
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { WebSocketServer, type WebSocket } from 'ws'
import { RawWs, encodeFrame } from '../../load/raw-ws.js'

async function serve(t: { teardown(fn: () => void): void }, onConnection: (ws: WebSocket, auth: string | undefined) => void): Promise<{ url: string; http: Server }> {
  const http = createServer((_req, res) => res.writeHead(404).end())
  const wss = new WebSocketServer({ noServer: true })
  http.on('upgrade', (req, socket, head) => {
    if (req.headers.authorization === 'Bearer refused') {
      socket.end('HTTP/1.1 401 Unauthorized\r\nConnection: close\r\n\r\n')
      return
    }
    wss.handleUpgrade(req, socket, head, (ws) => onConnection(ws, req.headers.authorization))
  })
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r))
  t.teardown(() => {
    for (const c of wss.clients) c.terminate()
    http.close()
  })
  return { url: `ws://127.0.0.1:${(http.address() as AddressInfo).port}/ws`, http }
}

const next = <T>(): { promise: Promise<T>; resolve: (v: T) => void } => {
  let resolve!: (v: T) => void
  const promise = new Promise<T>((r) => (resolve = r))
  return { promise, resolve }
}

t.test('messages of every size both ways, headers sent, fragments reassembled, pings answered', async (t) => {
  const sizes = [0, 1, 125, 126, 200, 65535, 65536, 300_000]
  const got: string[] = []
  const pong = next<string>()
  const serverGot: string[] = []
  const auth = next<string | undefined>()
  const { url } = await serve(t, (ws, a) => {
    auth.resolve(a)
    ws.on('pong', (d) => pong.resolve(d.toString()))
    ws.on('message', (d, isBinary) => {
      serverGot.push(d.toString())
      if (isBinary) return
      // Echo, then the same text in three fragments.
      ws.send(d.toString())
      if (serverGot.length === sizes.length) {
        ws.send('frag', { fin: false })
        ws.send('ment', { fin: false })
        ws.send('ed', { fin: true })
        ws.ping('are you there')
      }
    })
  })
  const ws = await RawWs.open(url, { headers: { authorization: 'Bearer abc' } })
  t.equal(await auth.promise, 'Bearer abc', 'the extra headers reach the server')
  const all = next<void>()
  ws.onMessage = (d) => {
    got.push(d.toString())
    if (got.length === sizes.length + 1) all.resolve()
  }
  const texts = sizes.map((n, i) => 'é'.repeat(i % 2) + 'x'.repeat(n - (i % 2) * 2 > 0 ? n - (i % 2) * 2 : n))
  for (const s of texts) ws.send(s)
  await all.promise
  t.same(serverGot, texts, 'the server read every frame (masked, or it would have closed the socket)')
  t.same(got.slice(0, sizes.length), texts, 'every echo came back whole')
  t.equal(got[sizes.length], 'fragmented', 'a fragmented message arrives once, whole')
  t.equal(await pong.promise, 'are you there', 'a ping is answered with its payload')
})

t.test('the close handshake, started by either side', async (t) => {
  const serverClosed = next<number>()
  const { url } = await serve(t, (ws) => {
    ws.on('close', (code) => serverClosed.resolve(code))
    ws.on('message', (d) => {
      if (d.toString() === 'bye') ws.close(4001, 'go away')
    })
  })
  const a = await RawWs.open(url)
  const aClosed = next<number>()
  a.onClose = (code) => aClosed.resolve(code)
  a.close(1000)
  t.equal(await serverClosed.promise, 1000, 'the server sees our close code')
  t.equal(await aClosed.promise, 1000, 'and we see its answer, then the end of the socket')

  const b = await RawWs.open(url)
  const bClosed = next<number>()
  b.onClose = (code) => bClosed.resolve(code)
  b.send('bye')
  t.equal(await bClosed.promise, 4001, "the server's close code")
})

t.test('a refused handshake, a bad accept key and a protocol violation', async (t) => {
  const { url, http } = await serve(t, (ws) => {
    ws.on('message', () => {
      // A frame with RSV1 set and no extension negotiated.
      ;(ws as unknown as { _socket: import('node:net').Socket })._socket.write(Buffer.from([0xc1, 0x01, 0x61]))
    })
  })
  await t.rejects(RawWs.open(url, { headers: { authorization: 'Bearer refused' } }), /Unexpected server response: 401/)
  await t.rejects(RawWs.open('ws://127.0.0.1:1/ws'), /ECONNREFUSED/)

  const ws = await RawWs.open(url)
  const closed = next<number>()
  ws.onClose = (code) => closed.resolve(code)
  ws.send('provoke')
  t.equal(await closed.promise, 1002, 'RSV bits close the connection with 1002')

  // A server answering 101 with the wrong key.
  const liar = createServer()
  liar.on('upgrade', (_req, socket) => socket.end('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: nope\r\n\r\n'))
  await new Promise<void>((r) => liar.listen(0, '127.0.0.1', r))
  t.teardown(() => liar.close())
  await t.rejects(RawWs.open(`ws://127.0.0.1:${(liar.address() as AddressInfo).port}/ws`), /Sec-WebSocket-Accept/)
  void http
})

t.test('frames are masked and length-encoded as RFC 6455 says', async (t) => {
  for (const n of [0, 5, 125, 126, 65535, 65536]) {
    const text = 'ab'.repeat(n).slice(0, n)
    const f = encodeFrame(0x1, text)
    t.equal(f[0], 0x81, `${n}: FIN and text`)
    t.ok(f[1] & 0x80, `${n}: the mask bit`)
    const code = f[1] & 0x7f
    const hdr = code < 126 ? 2 : code === 126 ? 4 : 10
    const len = code < 126 ? code : code === 126 ? f.readUInt16BE(2) : f.readUInt32BE(6)
    t.equal(len, n, `${n}: length`)
    const mask = f.subarray(hdr, hdr + 4)
    const body = Buffer.from(f.subarray(hdr + 4)).map((b, i) => b ^ mask[i % 4])
    t.equal(Buffer.from(body).toString(), text, `${n}: unmasks to the text`)
  }
  const keys = new Set(Array.from({ length: 100 }, () => encodeFrame(0x1, 'x').subarray(2, 6).toString('hex')))
  t.ok(keys.size > 95, 'masking keys vary')
})
