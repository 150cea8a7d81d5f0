/**
 * One delivery attempt against a real HTTP server: a 2xx is delivered (signed, the
 * library verifies it) on kept-alive connections, a 3xx is a failure and is not
 * followed, a receiver that never answers times out, a long answer body is cut
 * off without losing its status, and a refused target is never contacted.
 */
import t, { type Test } from 'tap'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { randomBytes } from 'node:crypto'
import { Webhook } from 'standardwebhooks'
import { createAgents, sendWebhook, type SendOptions } from '../../src/events/sender.js'

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
