/**
 * A TCP fault proxy (node:net) for PostgreSQL, Redis or tasksync itself: put it
 * between a process and what it talks to, then add latency, drop the open
 * connections, black-hole everything for a while (a partition: nothing passes,
 * nothing is closed, held data flows again on heal), refuse connections, or cut
 * one connection exactly between a request and its reply. With several targets
 * it is also a load balancer: each new connection goes to the next target that
 * accepts it. Used by the chaos checker and by tests.
 */
import { createServer, connect, type Server, type Socket } from 'node:net'

export interface ProxyTarget {
  host: string
  port: number
}

/** pass: normal; blackhole: hold every byte (both ways) until heal; refuse: close every connection at once. */
export type ProxyMode = 'pass' | 'blackhole' | 'refuse'

/** Where a one-shot cut lands: drop the matching request itself, or let it through and drop its reply. */
export type CutPoint = 'request' | 'reply'

interface Link {
  client: Socket
  upstream: Socket | null
  /** Set once the request a cut waits for has passed: the reply is dropped with the connection. */
  doomed: Armed | null
  pipes: Pipe[]
}

interface Armed {
  match: (chunk: Buffer) => boolean
  at: CutPoint
  resolve: () => void
}

export class FaultProxy {
  private readonly server: Server
  private readonly links = new Set<Link>()
  private readonly targets: ProxyTarget[]
  private armed: Armed | null = null
  mode: ProxyMode = 'pass'
  latencyMs = 0
  jitterMs = 0
  port = 0
  readonly stats = { connections: 0, dropped: 0, cuts: 0 }

  private constructor(targets: ProxyTarget[], private readonly random: () => number) {
    this.targets = targets
    this.server = createServer((client) => this.accept(client))
  }

  /** Listens on a free port of 127.0.0.1 in front of `targets` (URLs like postgres://h:p/db, or host:port). */
  static async start(targets: string | string[], opts: { random?: () => number } = {}): Promise<FaultProxy> {
    const list = (Array.isArray(targets) ? targets : [targets]).map(parseTarget)
    const proxy = new FaultProxy(list, opts.random ?? Math.random)
    await new Promise<void>((resolve) => proxy.server.listen(0, '127.0.0.1', resolve))
    proxy.port = (proxy.server.address() as { port: number }).port
    return proxy
  }

  /** `url` with its host and port replaced by the proxy's. */
  urlFor(url: string): string {
    const u = new URL(url)
    u.hostname = '127.0.0.1'
    u.port = String(this.port)
    return u.toString().replace(/\/$/, url.endsWith('/') ? '/' : '')
  }

  /** Delays every chunk, both ways, by `ms` (plus up to `jitterMs`), keeping order. 0 clears it. */
  setLatency(ms: number, jitterMs = 0): void {
    this.latencyMs = ms
    this.jitterMs = jitterMs
  }

  /** Closes every open connection once (new ones are accepted). */
  dropConnections(): void {
    for (const link of [...this.links]) this.destroy(link)
    this.stats.dropped++
  }

  /** A partition: nothing passes either way and nothing is closed, until `heal()`. */
  blackhole(): void {
    this.mode = 'blackhole'
  }

  /** Closes every connection and refuses new ones, until `heal()`. */
  refuse(): void {
    this.mode = 'refuse'
    for (const link of [...this.links]) this.destroy(link)
  }

  /** Back to normal: latency cleared, held data flows on. */
  heal(): void {
    this.mode = 'pass'
    this.latencyMs = 0
    this.jitterMs = 0
    for (const link of this.links) for (const p of link.pipes) p.flush()
  }

  /**
   * Arms a one-shot cut: the next client chunk for which `match` holds is dropped
   * with its connection (`request`), or passed on and then its connection is
   * closed as soon as the reply starts, the reply dropped (`reply`: the server did
   * the work, the client never hears of it). Resolves once the cut is done.
   */
  cutOnce(match: (chunk: Buffer) => boolean, at: CutPoint): Promise<void> {
    return new Promise((resolve) => (this.armed = { match, at, resolve }))
  }

  get connections(): number {
    return this.links.size
  }

  async close(): Promise<void> {
    this.refuse()
    await new Promise((resolve) => this.server.close(resolve))
  }

  // ── internals ──

  private accept(client: Socket): void {
    client.on('error', () => {})
    if (this.mode === 'refuse') return void client.destroy()
    this.stats.connections++
    const link: Link = { client, upstream: null, doomed: null, pipes: [] }
    this.links.add(link)
    const up = new Pipe(client, () => link.upstream, this, (chunk) => this.onRequest(link, chunk))
    const down = new Pipe(null, () => client, this, () => this.onReply(link))
    link.pipes.push(up, down)
    client.on('close', () => this.destroy(link))
    this.connectUpstream(link, down, Math.floor(this.random() * this.targets.length), this.targets.length)
  }

  /** Tries the targets in turn, from a random one, until one accepts. */
  private connectUpstream(link: Link, down: Pipe, index: number, tries: number): void {
    if (tries === 0 || !this.links.has(link)) return this.destroy(link)
    const target = this.targets[index % this.targets.length]
    const upstream = connect(target.port, target.host)
    let connected = false
    upstream.on('error', () => {})
    upstream.once('connect', () => {
      connected = true
      if (!this.links.has(link)) return void upstream.destroy()
      link.upstream = upstream
      down.attach(upstream)
      for (const p of link.pipes) p.flush()
    })
    upstream.on('close', () => {
      if (!connected) this.connectUpstream(link, down, index + 1, tries - 1)
      else this.destroy(link)
    })
  }

  /** A client chunk: false drops it (and the connection with it). */
  private onRequest(link: Link, chunk: Buffer): boolean {
    const armed = this.armed
    if (!armed || !armed.match(chunk)) return true
    this.armed = null
    if (armed.at === 'request') {
      this.cut(link, armed)
      return false
    }
    link.doomed = armed
    return true
  }

  /** A reply chunk: false drops it (and, after a doomed request, the connection). */
  private onReply(link: Link): boolean {
    if (!link.doomed) return true
    this.cut(link, link.doomed)
    return false
  }

  private cut(link: Link, armed: Armed): void {
    this.stats.cuts++
    this.destroy(link)
    armed.resolve()
  }

  private destroy(link: Link): void {
    if (!this.links.delete(link)) return
    for (const p of link.pipes) p.stop()
    link.client.destroy()
    link.upstream?.destroy()
  }

  /** When a chunk passed now may be delivered. */
  deliveryTime(): number {
    return Date.now() + this.latencyMs + (this.jitterMs > 0 ? Math.floor(this.random() * this.jitterMs) : 0)
  }
}

/**
 * One direction of a link: chunks are queued with the time they may leave and
 * written in order; held while the proxy black-holes; back-pressure pauses the source.
 */
class Pipe {
  private readonly queue: { at: number; chunk: Buffer }[] = []
  private timer: NodeJS.Timeout | null = null
  private stopped = false
  private waitingDrain = false
  private source: Socket | null = null

  constructor(
    source: Socket | null,
    private readonly sink: () => Socket | null,
    private readonly proxy: FaultProxy,
    private readonly admit: (chunk: Buffer) => boolean,
  ) {
    if (source) this.attach(source)
  }

  attach(source: Socket): void {
    this.source = source
    source.on('data', (chunk: Buffer) => {
      if (this.stopped || !this.admit(chunk)) return
      this.queue.push({ at: this.proxy.deliveryTime(), chunk })
      this.flush()
    })
  }

  flush(): void {
    if (this.stopped || this.waitingDrain || this.proxy.mode === 'blackhole') return
    const sink = this.sink()
    if (!sink) return
    const now = Date.now()
    while (this.queue.length > 0 && this.queue[0].at <= now) {
      const { chunk } = this.queue.shift()!
      if (!sink.write(chunk)) {
        this.waitingDrain = true
        this.source?.pause()
        sink.once('drain', () => {
          this.waitingDrain = false
          this.source?.resume()
          this.flush()
        })
        return
      }
    }
    if (this.queue.length > 0 && !this.timer) {
      this.timer = setTimeout(() => {
        this.timer = null
        this.flush()
      }, this.queue[0].at - now)
    }
  }

  stop(): void {
    this.stopped = true
    if (this.timer) clearTimeout(this.timer)
    this.queue.length = 0
  }
}

function parseTarget(t: string): ProxyTarget {
  if (t.includes('://')) {
    const u = new URL(t)
    return { host: u.hostname, port: Number(u.port) }
  }
  const i = t.lastIndexOf(':')
  return { host: t.slice(0, i), port: Number(t.slice(i + 1)) }
}
