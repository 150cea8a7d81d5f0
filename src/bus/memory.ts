/**
 * The in-process bus: fan-out inside one Node process. Buses created on the same
 * MemoryHub see each other, which lets tests run two "instances" without Redis.
 */
import { BusUnavailableError, type Bus, type BusHandler } from './types.js'

/** Shared channel table; every MemoryBus on one hub sees every publication on it. */
export class MemoryHub {
  readonly channels = new Map<string, Set<BusHandler>>()
}

const defaultHub = new MemoryHub()

export class MemoryBus implements Bus {
  readonly kind = 'memory' as const
  private readonly own = new Set<{ channel: string; handler: BusHandler }>()
  private closed = false

  constructor(
    readonly instanceId: string,
    private readonly hub: MemoryHub = new MemoryHub(),
  ) {}

  /** A bus on the process-wide hub (for several apps in one process sharing fan-out). */
  static shared(instanceId: string): MemoryBus {
    return new MemoryBus(instanceId, defaultHub)
  }

  async publish(channel: string, payload: string): Promise<void> {
    if (this.closed) throw new BusUnavailableError('closed')
    const handlers = this.hub.channels.get(channel)
    if (!handlers) return
    // Delivered on a later microtask, like a network bus: a publisher never runs handlers inline.
    for (const handler of [...handlers]) {
      queueMicrotask(() => {
        // As on Redis, one failing handler must not stop the others or crash the process.
        try {
          handler(payload, channel)
        } catch {}
      })
    }
  }

  async subscribe(channel: string, handler: BusHandler): Promise<() => Promise<void>> {
    if (this.closed) throw new BusUnavailableError('closed')
    // Wrapped so the same function subscribed twice is two subscriptions, as on Redis.
    const entry = { channel, handler: (p: string, c: string) => handler(p, c) }
    let set = this.hub.channels.get(channel)
    if (!set) this.hub.channels.set(channel, (set = new Set()))
    set.add(entry.handler)
    this.own.add(entry)
    return async () => this.remove(entry)
  }

  private remove(entry: { channel: string; handler: BusHandler }): void {
    this.own.delete(entry)
    const set = this.hub.channels.get(entry.channel)
    set?.delete(entry.handler)
    if (set?.size === 0) this.hub.channels.delete(entry.channel)
  }

  status(): 'up' | 'down' {
    return this.closed ? 'down' : 'up'
  }

  async close(): Promise<void> {
    this.closed = true
    for (const entry of [...this.own]) this.remove(entry)
  }
}
