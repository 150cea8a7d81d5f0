/**
 * The Redis bus: fan-out across instances. Publishing and subscribing use two
 * separate connections (a subscribed connection can run nothing else). Every
 * channel carries REDIS_PREFIX so deployments and test runs share one
 * Redis without seeing each other. Both connections reconnect by themselves;
 * subscriptions are kept locally and restored on every reconnect. A publish
 * while Redis is unreachable rejects at once, so a caller can answer `unavailable`.
 */
import { Redis } from 'ioredis'
import { BusUnavailableError, type Bus, type BusHandler } from './types.js'

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
  private readonly handlers = new Map<string, Set<BusHandler>>()
  private readonly log: NonNullable<RedisBusOptions['log']>
  private closed = false
  private lastErrorLog = 0

  private constructor(opts: RedisBusOptions) {
    this.instanceId = opts.instanceId
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
    // Auto-pipelining sends the publishes of one group commit in one write instead of one each.
    this.commands = new Redis(opts.url, { ...common, enableAutoPipelining: true, connectionName: `${opts.instanceId}:pub` })
    this.sub = new Redis(opts.url, { ...common, connectionName: `${opts.instanceId}:sub`, autoResubscribe: false })
    for (const [name, conn] of [['publish', this.commands], ['subscribe', this.sub]] as const) {
      conn.on('error', (err: Error) => this.logError(name, err))
      conn.on('ready', () => {
        if (this.lastErrorLog > 0) this.log('info', `redis ${name} connection is back`)
      })
    }
    this.sub.on('ready', () => void this.resubscribe())
    this.sub.on('message', (channel: string, message: string) => this.deliver(channel, message))
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
   * in call order; every caller's promise settles with that message's publish.
   */
  publish(channel: string, payload: string): Promise<void> {
    if (this.closed) return Promise.reject(new BusUnavailableError('closed'))
    let batch = this.outgoing.get(channel)
    if (!batch) {
      const payloads: string[] = []
      // Sent once this tick's code has run; a later publish starts the next batch.
      const sent = new Promise<void>((resolve) => process.nextTick(resolve)).then(async () => {
        this.outgoing.delete(channel)
        // ioredis rejects at once while disconnected (offline queue off) and after commandTimeout.
        await this.commands.publish(this.prefix + channel, packPayloads(payloads)).catch((err: Error) => {
          throw new BusUnavailableError(err.message, { cause: err })
        })
      })
      this.outgoing.set(channel, (batch = { payloads, sent }))
    }
    batch.payloads.push(payload)
    return batch.sent
  }

  /** This tick's publications by channel, not sent yet. */
  private readonly outgoing = new Map<string, { payloads: string[]; sent: Promise<void> }>()

  async subscribe(channel: string, handler: BusHandler): Promise<() => Promise<void>> {
    if (this.closed) throw new BusUnavailableError('closed')
    const key = this.prefix + channel
    // Wrapped so one function subscribed twice counts twice, and removal is exact.
    const own: BusHandler = (p, c) => handler(p, c)
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

  private deliver(channel: string, message: string): void {
    const set = this.handlers.get(channel)
    if (!set) return
    const name = channel.slice(this.prefix.length)
    for (const payload of unpackPayloads(message)) {
      for (const handler of set) {
        try {
          handler(payload, name)
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
