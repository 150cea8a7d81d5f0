/**
 * One delivery attempt against a real HTTP server: a 2xx is delivered (signed, the
 * library verifies it) on kept-alive connections, a 3xx is a failure and is not
 * followed, a receiver that never answers times out, a long answer body is cut
 * off without losing its status, and a refused target is never contacted.
 * With pipelining on, deliveries started together to one endpoint go on one connection
 * and leave in one write; one that times out there does not lose the ones behind it.
 */
import t, { type Test } from 'tap'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net'
import { randomBytes } from 'node:crypto'
import { Webhook } from 'standardwebhooks'
import { createAgents, sendWebhook, type SendOptions } from '../../src/events/sender.js'

/** Requests in flight per connection in the pipelining tests (WEBHOOK_PIPELINING). */
const PIPELINING = 8

async function server(t: Test, handle: (req: IncomingMessage, body: string, res: ServerResponse) => void) {
  const seen = { requests: 0, connections: 0 }
  const s = createServer((req, res) => {
    seen.requests++
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => handle(req, Buffer.concat(chunks).toString('utf8'), res))
  })
  s.on('connection', () => seen.connections++)
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    s.closeAllConnections()
    s.close()
  })
  return { url: `http://127.0.0.1:${(s.address() as AddressInfo).port}/hook`, seen }
}

const secret = `whsec_${randomBytes(24).toString('base64')}`

t.test('2xx: delivered, signed, on kept-alive connections', async (t) => {
  const verified: unknown[] = []
  const { url, seen } = await server(t, (req, body, res) => {
    verified.push(new Webhook(secret).verify(body, req.headers as Record<string, string>))
    res.writeHead(204).end()
  })
  const agents = createAgents()
  t.teardown(() => agents.destroy())
  const opts: SendOptions = { timeoutMs: 5000, allowPrivate: true, instanceId: 'test', agents }
  for (let i = 0; i < 10; i++) {
    const r = await sendWebhook(url, secret, `msg_${i}`, JSON.stringify({ type: 'task.updated', timestamp: new Date().toISOString(), data: { i } }), opts)
    t.match(r, { ok: true, status: 204, error: null })
  }
  t.equal(verified.length, 10, 'the library verified every one')
  t.same(verified.map((v) => (v as { data: { i: number } }).data.i), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
  // undici may open a second socket while the first answer is being completed, never one per request.
  t.ok(seen.connections <= 2, `connections are reused (${seen.connections} for 10 requests)`)
})

t.test('3xx is a failure and is not followed; 500 is a failure', async (t) => {
  const target = await server(t, (_req, _body, res) => res.writeHead(204).end())
  const redirect = await server(t, (_req, _body, res) => res.writeHead(302, { location: target.url }).end())
  const failing = await server(t, (_req, _body, res) => res.writeHead(500).end('no'))
  const opts: SendOptions = { timeoutMs: 5000, allowPrivate: true, instanceId: 'test' }
  t.match(await sendWebhook(redirect.url, secret, 'msg_r', '{}', opts), { ok: false, status: 302, error: 'receiver answered 302' })
  t.equal(target.seen.requests, 0, 'the redirect was not followed')
  t.match(await sendWebhook(failing.url, secret, 'msg_f', '{}', opts), { ok: false, status: 500, error: 'receiver answered 500' })
})

t.test('a receiver that never answers times out; a long answer body keeps its status', async (t) => {
  const hang = await server(t, () => {})
  const chatty = await server(t, (_req, _body, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' })
    res.end('x'.repeat(300_000))
  })
  const agents = createAgents()
  t.teardown(() => agents.destroy())
  const opts: SendOptions = { timeoutMs: 300, allowPrivate: true, instanceId: 'test', agents }
  const started = Date.now()
  const r = await sendWebhook(hang.url, secret, 'msg_h', '{}', opts)
  t.match(r, { ok: false, status: null, error: 'no answer within 300 ms' })
  t.ok(Date.now() - started < 3000, 'within its timeout')
  t.match(await sendWebhook(chatty.url, secret, 'msg_c', '{}', { ...opts, timeoutMs: 5000 }), { ok: true, status: 200 })
  t.match(await sendWebhook(chatty.url, secret, 'msg_c2', '{}', { ...opts, timeoutMs: 5000 }), { ok: true, status: 200 }, 'the agent still works after a cut-off body')
})

t.test('a private target is refused unless allowed, without a request', async (t) => {
  const s = await server(t, (_req, _body, res) => res.writeHead(204).end())
  const r = await sendWebhook(s.url, secret, 'msg_p', '{}', { timeoutMs: 5000, allowPrivate: false, instanceId: 'test' })
  t.match(r, { ok: false, status: null, error: /private or loopback/ })
  t.equal(s.seen.requests, 0)
})

/**
 * A bare HTTP/1.1 receiver (node:net, to see the bytes as they arrive): answers each
 * request 204 in order, `delayMs` after it came, except those whose webhook-id `hold`
 * names (never answered, nor anything after them on their connection).
 */
async function rawServer(t: Test, delayMs: number | ((id: string) => number), hold: (id: string) => boolean = () => false) {
  const seen = { connections: 0, reads: [] as number[], ids: [] as string[] }
  const sockets = new Set<Socket>()
  const s = createTcpServer((socket) => {
    seen.connections++
    sockets.add(socket)
    let buffered = Buffer.alloc(0)
    let held = false
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk])
      let requests = 0
      for (;;) {
        const end = buffered.indexOf('\r\n\r\n')
        if (end < 0) break
        const head = buffered.subarray(0, end).toString('latin1')
        const length = Number(/content-length: *(\d+)/i.exec(head)?.[1] ?? 0)
        if (buffered.length < end + 4 + length) break
        buffered = buffered.subarray(end + 4 + length)
        requests++
        const id = /webhook-id: *(\S+)/i.exec(head)?.[1] ?? ''
        seen.ids.push(id)
        // Answers go in request order: after a held one, none.
        if (hold(id)) held = true
        if (!held) setTimeout(() => socket.destroyed || socket.write('HTTP/1.1 204 No Content\r\nconnection: keep-alive\r\n\r\n'), typeof delayMs === 'number' ? delayMs : delayMs(id))
      }
      seen.reads.push(requests)
    })
    socket.on('error', () => {})
    socket.on('close', () => sockets.delete(socket))
  })
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    for (const socket of sockets) socket.destroy()
    s.close()
  })
  return { url: `http://127.0.0.1:${(s.address() as AddressInfo).port}/hook`, seen }
}

t.test('deliveries started together to one endpoint are pipelined on one connection and leave in one write', async (t) => {
  // Answers take 50 ms, so the first delivery is still in flight when the others start.
  const { url, seen } = await rawServer(t, 50)
  const agents = createAgents(PIPELINING)
  t.teardown(() => agents.destroy())
  const opts: SendOptions = { timeoutMs: 5000, allowPrivate: true, instanceId: 'test', agents }
  // Warm one connection; one delivery on it (undici checks an idle socket for a turn of the
  // event loop before writing to it), then the rest of a pipeline's worth in one tick (as a
  // round starts its runs while others are in flight).
  t.match(await sendWebhook(url, secret, 'msg_warm', '{}', opts), { ok: true, status: 204 })
  const first = sendWebhook(url, secret, 'msg_0', '{}', opts)
  while (seen.ids.length < 2) await new Promise((resolve) => setTimeout(resolve, 1))
  const results = await Promise.all([first, ...Array.from({ length: PIPELINING - 1 }, (_, i) => sendWebhook(url, secret, `msg_${i + 1}`, JSON.stringify({ i }), opts))])
  t.ok(results.every((r) => r.ok && r.status === 204), 'every one delivered')
  t.equal(seen.connections, 1, 'on the one kept-alive connection')
  t.same(seen.ids, ['msg_warm', ...Array.from({ length: PIPELINING }, (_, i) => `msg_${i}`)], 'each once, in the order started')
  t.same(seen.reads, [1, 1, PIPELINING - 1], 'the pipelined requests arrived in one read: one write')
})

t.test('a pipelined delivery that times out loses none of the ones behind it on its connection', async (t) => {
  const { url, seen } = await rawServer(t, 0, (id) => id === 'msg_slow')
  const agents = createAgents(PIPELINING)
  t.teardown(() => agents.destroy())
  const opts: SendOptions = { timeoutMs: 400, allowPrivate: true, instanceId: 'test', agents }
  t.match(await sendWebhook(url, secret, 'msg_warm', '{}', opts), { ok: true, status: 204 })
  const slowly = sendWebhook(url, secret, 'msg_slow', '{}', opts)
  while (seen.ids.length < 2) await new Promise((resolve) => setTimeout(resolve, 1))
  // Their own time runs longer than the head's (queued behind it, they share its wait: a request
  // whose time ran out meanwhile fails too, and the dispatcher retries it).
  const rest = await Promise.all(['msg_a', 'msg_b', 'msg_c'].map((id) => sendWebhook(url, secret, id, '{}', { ...opts, timeoutMs: 5000 })))
  const slow = await slowly
  t.match(slow, { ok: false, status: null, error: 'no answer within 400 ms' })
  t.ok(rest.every((r) => r.ok && r.status === 204), 'the ones behind it are delivered (sent again on a new connection)')
  t.equal(seen.ids.filter((id) => id === 'msg_slow').length, 1, 'the one that timed out is not sent again by the client (the dispatcher retries it)')
  t.equal(seen.connections, 2, 'they were pipelined behind it, then sent on a new connection')
})

t.test('an endpoint that answered slowly gets one request per connection for a while, then pipelining again', async (t) => {
  const { url, seen } = await rawServer(t, (id) => (id === 'msg_slow' ? 250 : 20))
  const agents = createAgents(PIPELINING, { slowMs: 200, calmMs: 1500 })
  t.teardown(() => agents.destroy())
  const opts: SendOptions = { timeoutMs: 5000, allowPrivate: true, instanceId: 'test', agents }
  const together = async (prefix: string) => {
    const from = seen.ids.length
    const first = sendWebhook(url, secret, `${prefix}_0`, '{}', opts)
    while (seen.ids.length < from + 1) await new Promise((resolve) => setTimeout(resolve, 1))
    return Promise.all([first, ...[1, 2, 3].map((i) => sendWebhook(url, secret, `${prefix}_${i}`, '{}', opts))])
  }
  t.match(await sendWebhook(url, secret, 'msg_warm', '{}', opts), { ok: true, status: 204 })
  t.ok((await together('fast')).every((r) => r.ok), 'delivered')
  t.equal(seen.connections, 1, 'while it answers fast, deliveries started together share one connection')
  t.match(await sendWebhook(url, secret, 'msg_slow', '{}', opts), { ok: true, status: 204 }, 'a slow answer is still a delivery')
  t.ok((await together('calm')).every((r) => r.ok), 'delivered')
  t.equal(seen.connections, 5, 'after a slow answer, each request in flight has a connection of its own')
  t.same(seen.reads.slice(-4), [1, 1, 1, 1], 'and arrives alone')
  await new Promise((resolve) => setTimeout(resolve, 1600))
  t.ok((await together('again')).every((r) => r.ok), 'delivered')
  t.equal(seen.connections, 5, 'once the endpoint kept quiet long enough, they share the pipelined connection again')
  t.equal(seen.reads.at(-1), 3, 'the three started in one tick arrived in one read')
})
