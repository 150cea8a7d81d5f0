/**
 * A circuit breaker on new PostgreSQL connections, so that an outage is answered
 * at once (`unavailable`) instead of after a connect timeout per request.
 *
 * Every connection of the pool is made through `socket()` (postgres.js's `socket`
 * option). A connection that closes, fails or stays silent for `connectTimeoutMs`
 * before the server's first byte is a connection failure, and one opens the
 * breaker. While it is open, a new connection fails at once with
 * CONNECTION_BREAKER_OPEN (a connection error: `unavailable`), and a probe in the
 * background tries a real `select 1` every `probeMs`; its first success closes the
 * breaker. Open connections are left alone: this bounds only what needs a new one.
 */
import { Socket } from 'node:net'

export interface BreakerOptions {
  host: string
  port: number
  /** How long a new connection may take to hear from the server. */
  connectTimeoutMs: number
  /** Pause between probes while open. */
  probeMs: number
  /** One `select 1` on a fresh connection (made with `rawSocket`); rejects on failure. */
  probe(): Promise<void>
  onChange?(state: 'open' | 'closed', err?: Error): void
}

const connectionError = (code: string, message: string) => Object.assign(new Error(message), { code })

/**
 * A socket whose `error` event never throws: postgres.js removes every listener
 * of a socket when it closes (ours included), and an error emitted after that
 * (a deferred failure, a late reset) would be an uncaught exception that takes
 * the whole process down. Its failure still reaches postgres.js while it listens.
 */
function quietSocket(): Socket {
  const s = new Socket()
  const emit = s.emit.bind(s)
  s.emit = ((event: string | symbol, ...args: unknown[]) => (event === 'error' && s.listenerCount('error') === 0 ? false : emit(event, ...args))) as Socket['emit']
  return s
}

export class ConnectionBreaker {
  private open = false
  private probing: Promise<void> | null = null
  private stopped = false
  private timer: NodeJS.Timeout | null = null

  constructor(private readonly opts: BreakerOptions) {}

  get isOpen(): boolean {
    return this.open
  }

  /** The socket factory of the pool: fails at once while open. */
  readonly socket = (): Socket => {
    if (!this.open) return this.rawSocket(true)
    const s = quietSocket()
    // Failed the way a refused connection fails, once postgres.js writes its first message (its
    // listeners are on by then; it drops them all when the socket closes, so nothing may follow).
    s.write = (() => {
      if (!s.destroyed) {
        process.nextTick(() => s.destroy(connectionError('CONNECTION_BREAKER_OPEN', `PostgreSQL at ${this.opts.host}:${this.opts.port} is unreachable (circuit breaker open; probing)`)))
      }
      return false
    }) as Socket['write']
    return s
  }

  /** A connecting socket; with `watch`, its failure before the server's first byte opens the breaker. */
  rawSocket(watch = false): Socket {
    const s = quietSocket()
    let heard = false
    // Closed without an error event: the close opens the breaker, and postgres.js's retry of the
    // waiting query then fails at once on it (an error emitted here could outlive its listeners).
    const deadline = setTimeout(() => s.destroy(), this.opts.connectTimeoutMs)
    s.once('data', () => {
      heard = true
      clearTimeout(deadline)
    })
    s.once('close', () => {
      clearTimeout(deadline)
      if (watch && !heard) this.trip()
    })
    s.connect(this.opts.port, this.opts.host)
    // postgres.js names the TLS server after it (SNI).
    Object.assign(s, { host: this.opts.host })
    return s
  }

  /** Stops probing (the pool is closing). */
  stop(): void {
    this.stopped = true
    if (this.timer) clearTimeout(this.timer)
  }

  private trip(): void {
    if (this.open || this.stopped) return
    this.open = true
    this.opts.onChange?.('open')
    this.scheduleProbe(0)
  }

  private scheduleProbe(ms: number): void {
    if (this.stopped) return
    this.timer = setTimeout(() => {
      this.timer = null
      this.probing ??= this.opts
        .probe()
        .then(
          () => {
            this.open = false
            this.opts.onChange?.('closed')
          },
          () => this.scheduleProbe(this.opts.probeMs),
        )
        .finally(() => (this.probing = null))
    }, ms)
    this.timer.unref()
  }
}
