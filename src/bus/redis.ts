/**
 * The Redis bus: fan-out across instances. Publishing and subscribing use two
 * separate connections (a subscribed connection can run nothing else). Every
 * channel carries REDIS_PREFIX so deployments and test runs share one
 * Redis without seeing each other. Both connections reconnect by themselves;
 * subscriptions are kept locally and restored on every reconnect. A publish
 * while Redis is unreachable rejects at once, so a caller can answer `unavailable`.
 */
import { Redis } from 'ioredis'
import { BusUnavailableError, type Bus, type BusHandler, type SubscribeOptions } from './types.js'

export interface RedisBusOptions {
  url: string
  prefix: string
  instanceId: string
  /** How long start-up waits for Redis before giving up (ms). */
  connectTimeoutMs?: number
  /** A command with no reply after this long rejects (ms). */
  commandTimeoutMs?: number
  log?: (level: 'info' | 'warn', msg: string) => void
}

export class RedisBus implements Bus {
  readonly kind = 'redis' as const
  readonly instanceId: string
  /** The command connection: publish (also lent to the rate limiter). */
  readonly commands: Redis
  private readonly sub: Redis
  private readonly prefix: string
  /** Handlers by prefixed channel: the truth that reconnects restore. */
  private readonly handlers = new Map<string, Set<Subscription>>()
  /** `","from":"<instanceId>",`: what follows the kind in this instance's own notices (see fromSelf). */
  private readonly ownMarker: Buffer
  private readonly log: NonNullable<RedisBusOptions['log']>
  private closed = false
  private lastErrorLog = 0

  private constructor(opts: RedisBusOptions) {
    this.instanceId = opts.instanceId
    this.ownMarker = Buffer.from(`","from":${JSON.stringify(opts.instanceId)},`)
    this.prefix = opts.prefix
    this.log = opts.log ?? (() => {})
    const common = {
      lazyConnect: true,
      // Commands fail fast while disconnected instead of queueing: callers must know.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      commandTimeout: opts.commandTimeoutMs ?? 5000,
      connectTimeout: opts.connectTimeoutMs ?? 10_000,
      retryStrategy: (times: number) => Math.min(50 * 2 ** Math.min(times, 6), 2000),
    }
    // No auto-pipelining: publish() already sends one tick's publications in one write
    // (and auto-pipelining would build a Pipeline per tick for that one command).
    this.commands = new Redis(opts.url, { ...common, connectionName: `${opts.instanceId}:pub` })
    this.sub = new Redis(opts.url, { ...common, connectionName: `${opts.instanceId}:sub`, autoResubscribe: false })
    for (const [name, conn] of [['publish', this.commands], ['subscribe', this.sub]] as const) {
      conn.on('error', (err: Error) => this.logError(name, err))
      conn.on('ready', () => {
        if (this.lastErrorLog > 0) this.log('info', `redis ${name} connection is back`)
      })
    }
    this.sub.on('ready', () => void this.resubscribe())
    // Buffers, decoded only for a handler that takes the message: this instance's own echo is dropped undecoded.
    this.sub.on('messageBuffer', (channel: Buffer, message: Buffer) => this.deliver(channel.toString(), message))
  }

  /** Connects both connections; rejects (and cleans up) when Redis cannot be reached in time. */
  static async connect(opts: RedisBusOptions): Promise<RedisBus> {
    const bus = new RedisBus(opts)
    const timeoutMs = opts.connectTimeoutMs ?? 10_000
    let timer: NodeJS.Timeout | undefined
    try {
      await Promise.race([
        Promise.all([bus.commands.connect(), bus.sub.connect()]),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs)
        }),
      ])
    } catch (err) {
      bus.closed = true
      bus.commands.disconnect()
      bus.sub.disconnect()
      throw new Error(`cannot connect to Redis at ${redactUrl(opts.url)}: ${(err as Error).message}`)
    } finally {
      clearTimeout(timer)
    }
    return bus
  }

  /**
   * Publications of one tick to one channel leave as one Redis message (a group
   * commit's ops: one PUBLISH and one delivery per instance instead of one each),
   * in call order, and one tick's messages (every channel) leave in one write;
   * every caller's promise settles with its message's publish.
   */
  publish(channel: string, payload: string): Promise<void> {
    if (this.closed) return Promise.reject(new BusUnavailableError('closed'))
    let batch = this.outgoing.get(channel)
    if (!batch) {
      if (this.outgoing.size === 0) process.nextTick(this.sendOutgoing)
      let settle!: { resolve(): void; reject(err: unknown): void }
      const sent = new Promise<void>((resolve, reject) => (settle = { resolve, reject }))
      this.outgoing.set(channel, (batch = { payloads: [], sent, settle }))
    }
    batch.payloads.push(payload)
    return batch.sent
  }

  /** This tick's publications by channel, not sent yet. */
  private readonly outgoing = new Map<string, Outgoing>()

  /** Sends this tick's publications: one PUBLISH, or one pipeline of them (one write either way). */
  private readonly sendOutgoing = (): void => {
    const batches = [...this.outgoing]
    this.outgoing.clear()
    // ioredis rejects at once while disconnected (offline queue off) and after commandTimeout.
    const unavailable = (err: Error) => new BusUnavailableError(err.message, { cause: err })
    if (batches.length === 1) {
      const [channel, { payloads, settle }] = batches[0]
      this.commands.publish(this.prefix + channel, packPayloads(payloads)).then(
        () => settle.resolve(),
        (err: Error) => settle.reject(unavailable(err)),
      )
      return
    }
    const pipeline = this.commands.pipeline()
    for (const [channel, { payloads }] of batches) pipeline.publish(this.prefix + channel, packPayloads(payloads))
    pipeline.exec().then(
      (results) => batches.forEach(([, { settle }], i) => (results?.[i]?.[0] ? settle.reject(unavailable(results[i][0] as Error)) : settle.resolve())),
      (err: Error) => batches.forEach(([, { settle }]) => settle.reject(unavailable(err))),
    )
  }

  async subscribe(channel: string, handler: BusHandler, opts?: SubscribeOptions): Promise<() => Promise<void>> {
    if (this.closed) throw new BusUnavailableError('closed')
    const key = this.prefix + channel
    // An object of its own, so one function subscribed twice counts twice, and removal is exact.
    const own: Subscription = { handler, skipOwnNotices: opts?.skipOwnNotices === true }
    let set = this.handlers.get(key)
    if (!set) {
      this.handlers.set(key, (set = new Set()))
      // While disconnected the channel is only recorded: the next 'ready' subscribes it.
      if (this.sub.status === 'ready') await this.sub.subscribe(key).catch((err) => this.logError('subscribe', err))
    }
    set.add(own)
    return async () => {
      const current = this.handlers.get(key)
      if (!current?.delete(own) || current.size > 0) return
      this.handlers.delete(key)
      if (this.sub.status === 'ready') await this.sub.unsubscribe(key).catch(() => {})
    }
  }

  status(): 'up' | 'down' {
    return !this.closed && this.commands.status === 'ready' && this.sub.status === 'ready' ? 'up' : 'down'
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.handlers.clear()
    await Promise.all([this.commands, this.sub].map((c) => c.quit().catch(() => c.disconnect())))
  }

  private deliver(channel: string, message: Buffer): void {
    const set = this.handlers.get(channel)
    if (!set) return
    const name = channel.slice(this.prefix.length)
    // Decoded only when a handler takes it: a publication is this instance's own or not as a whole.
    let own: boolean | undefined
    let takers = 0
    for (const sub of set) if (!(sub.skipOwnNotices && (own ??= fromSelf(message, this.ownMarker)))) takers++
    if (takers === 0) return
    for (const payload of unpackPayloads(message.toString())) {
      for (const sub of set) {
        if (own && sub.skipOwnNotices) continue
        try {
          sub.handler(payload, name)
        } catch (err) {
          this.log('warn', `bus handler for ${name} threw: ${(err as Error).message}`)
        }
      }
    }
  }

  private async resubscribe(): Promise<void> {
    const channels = [...this.handlers.keys()]
    if (channels.length === 0 || this.closed) return
    await this.sub.subscribe(...channels).catch((err) => this.logError('subscribe', err))
  }

  /** At most one line every few seconds while Redis is down: a reconnect loop must not flood logs. */
  private logError(name: string, err: Error): void {
    if (this.closed) return
    const now = Date.now()
    if (now - this.lastErrorLog < 5000) return
    this.lastErrorLog = now
    this.log('warn', `redis ${name} connection: ${err.message}`)
  }
}

interface Subscription {
  handler: BusHandler
  skipOwnNotices: boolean
}

interface Outgoing {
  payloads: string[]
  sent: Promise<void>
  settle: { resolve(): void; reject(err: unknown): void }
}

const KIND_KEY = Buffer.from('{"kind":"')

/**
 * True when a Redis message (one payload, or packed ones: all from one publish()
 * of one instance) is this instance's own notice, from its first bytes: its first
 * payload starts `{"kind":"<kind>` followed by `ownMarker` (`","from":"<id>",`).
 */
export function fromSelf(message: Buffer, ownMarker: Buffer): boolean {
  let i = 0
  if (message[0] === 0) {
    // Packed: the marker, the first payload's length, a colon.
    i = 1
    while (i < 12 && message[i] >= 0x30 && message[i] <= 0x39) i++
    if (i === 1 || message[i] !== 0x3a) return false
    i++
  }
  // (Buffer#compare throws on a range past the end: every range is checked first.)
  if (i + KIND_KEY.length > message.length || message.compare(KIND_KEY, 0, KIND_KEY.length, i, i + KIND_KEY.length) !== 0) return false
  const quote = message.indexOf(0x22, i + KIND_KEY.length)
  if (quote < 0 || quote > i + KIND_KEY.length + 24 || quote + ownMarker.length > message.length) return false
  return message.compare(ownMarker, 0, ownMarker.length, quote, quote + ownMarker.length) === 0
}

/** Marks a Redis message that carries several payloads; a payload of its own never starts with it. */
const PACKED = '\u0000'

/**
 * One payload goes as it is; several (or one that starts with the marker) as the
 * marker followed by `<length>:<payload>` for each, lengths in UTF-16 code units.
 */
export function packPayloads(payloads: string[]): string {
  if (payloads.length === 1 && !payloads[0].startsWith(PACKED)) return payloads[0]
  let out = PACKED
  for (const p of payloads) out += `${p.length}:${p}`
  return out
}

/** The payloads of a Redis message (the inverse of packPayloads); a malformed tail is dropped. */
export function unpackPayloads(message: string): string[] {
  if (!message.startsWith(PACKED)) return [message]
  const out: string[] = []
  let i = PACKED.length
  while (i < message.length) {
    const colon = message.indexOf(':', i)
    const length = colon < 0 ? NaN : Number(message.slice(i, colon))
    if (!Number.isSafeInteger(length) || length < 0 || colon + 1 + length > message.length) break
    out.push(message.slice(colon + 1, colon + 1 + length))
    i = colon + 1 + length
  }
  return out
}

function redactUrl(url: string): string {
  try {
    const u = new URL(url)
    if (u.password) u.password = '***'
    return u.toString()
  } catch {
    return 'the configured URL'
  }
}
