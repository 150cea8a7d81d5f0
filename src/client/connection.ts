/**
 * One logical connection to `/ws` over a succession of sockets: opens, says
 * `hello`, waits for `welcome`, watches for dead sockets (a `ping` after a
 * quiet heartbeat, closed after two), and reconnects with full-jitter backoff.
 * It knows nothing of tasks: ready sockets and messages go to the client.
 */
import { CloseCode } from '../protocol/close-codes.js'
import type { ClientMessage, ServerMessage } from '../protocol/messages.js'
import { Backoff, type BackoffOptions, type Failure } from './backoff.js'

/** The part of the WebSocket API the SDK uses (browsers, React Native and the `ws` package all have it). */
export interface WebSocketLike {
  readonly readyState: number
  send(data: string): void
  close(code?: number, reason?: string): void
  onopen: ((ev: unknown) => void) | null
  onmessage: ((ev: { data: unknown }) => void) | null
  onclose: ((ev: { code: number; reason?: string }) => void) | null
  onerror: ((ev: unknown) => void) | null
}

/** A WebSocket constructor: the global one, or `ws` in Node. */
export type WebSocketConstructor = new (url: string) => WebSocketLike

export interface ConnectionOptions {
  /** ws:// or wss:// URL of the `/ws` endpoint. */
  url: string
  WebSocket: WebSocketConstructor
  clientId: string
  /** An access token; `force` asks for a new one (the last was refused). */
  token(force: boolean): Promise<string>
  backoff?: BackoffOptions
  /** Heartbeat when the server's welcome does not say (ms). */
  heartbeatMs?: number
  /** How long to wait for `welcome` after the socket opens (ms). */
  welcomeTimeoutMs?: number
  onConnecting(): void
  onReady(welcome: Extract<ServerMessage, { type: 'welcome' }>): void
  onMessage(msg: ServerMessage): void
  /** The ready socket is gone (code of its close, 0 when the client gave up on it). */
  onLost(code: number): void
  onError(err: Error): void
}

const OPEN = 1

export class Connection {
  private ws: WebSocketLike | null = null
  private ready = false
  private wanted = false
  private retryTimer: ReturnType<typeof setTimeout> | null = null
  private beatTimer: ReturnType<typeof setInterval> | null = null
  private welcomeTimer: ReturnType<typeof setTimeout> | null = null
  private lastHeard = 0
  private pinged = false
  private forceToken = false
  private opening = false
  /** The current socket opened (a server answered); failures in a row where none did. */
  private opened = false
  private unansweredRun = 0
  private readonly backoff: Backoff

  constructor(private readonly opts: ConnectionOptions) {
    this.backoff = new Backoff(opts.backoff)
  }

  /** True after `welcome` on the current socket. */
  get isReady(): boolean {
    return this.ready
  }

  /** Connects now (if not connected) and keeps reconnecting until `stop()`. */
  start(): void {
    this.wanted = true
    if (this.ws || this.retryTimer || this.opening) return
    void this.open()
  }

  /** Reconnects at once, skipping any backoff wait. */
  restart(): void {
    this.stop()
    this.backoff.reset()
    this.start()
  }

  /** Closes the socket and stops reconnecting. */
  stop(): void {
    this.wanted = false
    if (this.retryTimer) clearTimeout(this.retryTimer)
    this.retryTimer = null
    this.drop(CloseCode.NORMAL, 'client closed')
  }

  /** Sends on the ready socket; false when there is none (the caller resends on the next one). */
  send(msg: ClientMessage): boolean {
    if (!this.ready || !this.ws || this.ws.readyState !== OPEN) return false
    try {
      this.ws.send(JSON.stringify(msg))
      return true
    } catch {
      return false
    }
  }

  /** Closes the current socket as broken; the usual reconnect follows. */
  reconnect(reason: string, forceToken = false): void {
    this.forceToken ||= forceToken
    this.drop(4000, reason)
  }

  private async open(): Promise<void> {
    this.opts.onConnecting()
    let token: string
    this.opening = true
    try {
      token = await this.opts.token(this.forceToken)
      this.forceToken = false
    } catch (err) {
      this.opts.onError(err as Error)
      return this.scheduleRetry('answered')
    } finally {
      this.opening = false
    }
    if (!this.wanted || this.ws) return
    const sep = this.opts.url.includes('?') ? '&' : '?'
    let ws: WebSocketLike
    try {
      ws = new this.opts.WebSocket(`${this.opts.url}${sep}access_token=${encodeURIComponent(token)}`)
    } catch (err) {
      this.opts.onError(err as Error)
      return this.scheduleRetry('answered')
    }
    this.ws = ws
    this.opened = false
    ws.onopen = () => {
      this.opened = true
      this.unansweredRun = 0
      this.heard()
      ws.send(JSON.stringify({ type: 'hello', clientId: this.opts.clientId }))
      this.welcomeTimer = setTimeout(() => this.reconnect('no welcome'), this.opts.welcomeTimeoutMs ?? 15_000)
    }
    ws.onmessage = (ev) => this.onFrame(ev.data)
    ws.onerror = () => {
      // A close event always follows; it decides what to do.
    }
    ws.onclose = (ev) => {
      if (this.ws !== ws) return
      this.closed(ev.code)
    }
  }

  private onFrame(data: unknown): void {
    this.heard()
    let msg: ServerMessage
    try {
      msg = JSON.parse(typeof data === 'string' ? data : String(data)) as ServerMessage
    } catch {
      return
    }
    if (msg.type === 'welcome') {
      if (this.welcomeTimer) clearTimeout(this.welcomeTimer)
      this.welcomeTimer = null
      this.ready = true
      this.backoff.reset()
      this.startHeartbeat(msg.heartbeatMs)
      this.opts.onReady(msg)
      return
    }
    if (msg.type === 'pong') return
    if (msg.type === 'error' && !this.ready) {
      // hello was refused (forbidden: the clientId is bound to another device; or the server could not
      // check it): no welcome will come on this socket, so replace it now rather than at the timeout.
      this.opts.onError(new Error(`hello refused: ${msg.code}: ${msg.message}`))
      if (msg.code === 'forbidden') this.backoff.escalate(5)
      this.reconnect(`hello refused: ${msg.code}`)
      return
    }
    this.opts.onMessage(msg)
  }

  private heard(): void {
    this.lastHeard = Date.now()
    this.pinged = false
  }

  /** Silence for a heartbeat: ping; for two: the socket is dead, replace it. */
  private startHeartbeat(serverBeat: number | undefined): void {
    const beat = this.opts.heartbeatMs ?? serverBeat ?? 25_000
    if (this.beatTimer) clearInterval(this.beatTimer)
    this.beatTimer = setInterval(() => {
      const quiet = Date.now() - this.lastHeard
      if (quiet >= 2 * beat) this.reconnect('heartbeat timeout')
      else if (quiet >= beat && !this.pinged) {
        this.pinged = true
        this.send({ type: 'ping' })
      }
    }, Math.max(50, Math.floor(beat / 4)))
  }

  /** Forgets the current socket (closing it) and runs the close path. */
  private drop(code: number, reason: string): void {
    const ws = this.ws
    if (!ws) return
    ws.onopen = ws.onmessage = ws.onclose = null
    // Closing while still connecting makes `ws` emit an error: it must have a listener.
    ws.onerror = () => {}
    try {
      ws.close(code === CloseCode.NORMAL ? code : 4000, reason)
    } catch {
      // Already closing or closed.
    }
    this.closed(code)
  }

  private closed(code: number): void {
    const wasReady = this.ready
    this.ws = null
    this.ready = false
    if (this.beatTimer) clearInterval(this.beatTimer)
    if (this.welcomeTimer) clearTimeout(this.welcomeTimer)
    this.beatTimer = this.welcomeTimer = null
    // Nothing answered (refused, unreachable; or an upgrade refused over HTTP, which browsers
    // cannot tell apart): retried within seconds (backoff.ts), with the same token while it is
    // fresh; a new one every third such failure in a row, in case a refused token is the cause.
    const failure: Failure = this.opened ? 'answered' : 'unanswered'
    this.opened = false
    const unansweredTokenCheck = failure === 'unanswered' && ++this.unansweredRun % 3 === 0
    // Closed by the server before welcome, or for policy (expired auth): the token may be the reason.
    if ((!wasReady && failure === 'answered') || unansweredTokenCheck || code === CloseCode.POLICY) this.forceToken = true
    if (code === CloseCode.OVERLOADED) this.backoff.escalate(3)
    if (wasReady) this.opts.onLost(code)
    if (this.wanted) this.scheduleRetry(failure)
  }

  private scheduleRetry(failure: Failure): void {
    if (!this.wanted || this.retryTimer) return
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null
      if (this.wanted && !this.ws) void this.open()
    }, this.backoff.next(failure))
  }
}
