/**
 * A WebSocket test client on the real `ws` package: records every message and
 * lets a test wait for the next one that matches, plus the close code.
 */
import { randomUUID } from 'node:crypto'
import { createServer, connect, type Server, type Socket } from 'node:net'
import WebSocket from 'ws'

export type Msg = Record<string, any> & { type: string }

export interface Closed {
  code: number
  reason: string
}

export class TestSocket {
  /** Every message received, in order. */
  readonly log: Msg[] = []
  private inbox: Msg[] = []
  private waiters: { pred: (m: Msg) => boolean; resolve: (m: Msg) => void }[] = []
  readonly closed: Promise<Closed>
  clientId: string = randomUUID()

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const msg = JSON.parse(data.toString()) as Msg
      this.log.push(msg)
      const i = this.waiters.findIndex((w) => w.pred(msg))
      if (i >= 0) this.waiters.splice(i, 1)[0].resolve(msg)
      else this.inbox.push(msg)
    })
    this.closed = new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })))
  }

  /** Opens a socket with the token in the header (or in `?access_token=` when `inQuery`). */
  static open(baseUrl: string, token: string | null, opts: { inQuery?: boolean; query?: Record<string, string> } = {}): Promise<TestSocket> {
    const query = new URLSearchParams({ ...(token && opts.inQuery ? { access_token: token } : {}), ...opts.query }).toString()
    const wsUrl = baseUrl.replace(/^http/, 'ws') + '/ws' + (query ? `?${query}` : '')
    const headers = token && !opts.inQuery ? { authorization: `Bearer ${token}` } : undefined
    const ws = new WebSocket(wsUrl, { headers })
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(new TestSocket(ws)))
      ws.once('unexpected-response', (req, res) => {
        res.on('close', () => req.destroy())
        let body = ''
        res.on('data', (c) => (body += c))
        res.on('end', () => reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode, body })))
      })
      ws.once('error', reject)
    })
  }

  /** Opens, says hello, waits for the welcome. */
  static async ready(baseUrl: string, token: string, clientId?: string): Promise<TestSocket> {
    const s = await TestSocket.open(baseUrl, token)
    if (clientId) s.clientId = clientId
    s.send({ type: 'hello', clientId: s.clientId })
    await s.next('welcome')
    return s
  }

  send(msg: object | string): void {
    this.ws.send(typeof msg === 'string' ? msg : JSON.stringify(msg))
  }

  /** The next message of `type` (and matching `pred`), taken from what arrived or waited for. */
  next(type: string, pred: (m: Msg) => boolean = () => true, timeoutMs = 10_000): Promise<Msg> {
    return this.nextWhere((m) => m.type === type && pred(m), timeoutMs, type)
  }

  /** The next message matching `match`, whatever its type. */
  nextWhere(match: (m: Msg) => boolean, timeoutMs = 10_000, type = 'matching message'): Promise<Msg> {
    const i = this.inbox.findIndex(match)
    if (i >= 0) return Promise.resolve(this.inbox.splice(i, 1)[0])
    return new Promise((resolve, reject) => {
      const waiter = { pred: match, resolve: (m: Msg) => (clearTimeout(timer), resolve(m)) }
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1)
        reject(new Error(`no ${type} within ${timeoutMs} ms; last messages: ${JSON.stringify(this.log.slice(-5)).slice(0, 600)}`))
      }, timeoutMs)
      this.waiters.push(waiter)
    })
  }

  /** Messages of `type` received so far (from the full log). */
  all(type: string): Msg[] {
    return this.log.filter((m) => m.type === type)
  }

  /** Sends a request and waits for the reply of `type` (e.g. subscribe → subscribed). */
  async request(msg: object, replyType: string, pred?: (m: Msg) => boolean): Promise<Msg> {
    const reply = this.next(replyType, pred)
    this.send(msg)
    return reply
  }

  close(): void {
    this.ws.close()
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Waits until `cond` holds (polling), or fails with `what`. */
export async function until(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await sleep(10)
  }
}

/**
 * A TCP proxy in front of PostgreSQL or Redis that a test can cut and restore:
 * the server's view of "storage went away and came back", without touching the
 * shared server itself.
 */
export class TcpProxy {
  private readonly server: Server
  private readonly sockets = new Set<Socket>()
  private down = false
  port = 0

  private constructor(private readonly targetHost: string, private readonly targetPort: number) {
    this.server = createServer((client) => {
      if (this.down) return client.destroy()
      const upstream = connect(this.targetPort, this.targetHost)
      for (const s of [client, upstream]) {
        this.sockets.add(s)
        s.on('close', () => this.sockets.delete(s))
        s.on('error', () => {})
      }
      client.pipe(upstream)
      upstream.pipe(client)
      client.on('close', () => upstream.destroy())
      upstream.on('close', () => client.destroy())
    })
  }

  static async start(target: string): Promise<TcpProxy> {
    const u = new URL(target)
    const proxy = new TcpProxy(u.hostname, Number(u.port))
    await new Promise<void>((resolve) => proxy.server.listen(0, '127.0.0.1', resolve))
    proxy.port = (proxy.server.address() as { port: number }).port
    return proxy
  }

  /** `target` with its port replaced by the proxy's. */
  urlFor(target: string): string {
    const u = new URL(target)
    u.port = String(this.port)
    return u.toString()
  }

  /** Drops every connection and refuses new ones. */
  cut(): void {
    this.down = true
    for (const s of this.sockets) s.destroy()
  }

  restore(): void {
    this.down = false
  }

  async close(): Promise<void> {
    this.cut()
    await new Promise((resolve) => this.server.close(resolve))
  }
}
