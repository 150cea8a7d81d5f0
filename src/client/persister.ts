/**
 * Writes the client's state to its storage one batch at a time. Keys changed
 * while a write runs go into the next one, so a caller's `persist(key)`
 * resolves once the key's state as of the call is durable.
 */
import type { ClientStorage, StorageChanges } from './storage.js'

export class Persister {
  private readonly dirty = new Set<string>()
  private queued: Promise<void> | null = null
  private chain: Promise<void> = Promise.resolve()
  private stopped = false
  private timer: ReturnType<typeof setTimeout> | null = null

  constructor(
    private readonly storage: ClientStorage,
    /** The current value of a key (null deletes it). */
    private readonly valueOf: (key: string) => unknown,
    private readonly onError: (err: Error) => void,
  ) {}

  /** Marks a key to go with the next write without asking for one. */
  markDirty(key: string): void {
    this.dirty.add(key)
  }

  /** Resolves once `key` (and everything else dirty) is durable. */
  persist(key: string): Promise<void> {
    // After close nothing is written: the next process may already own the storage.
    if (this.stopped) return this.chain
    this.dirty.add(key)
    return this.queue()
  }

  /**
   * `key` goes with the next write, which happens within `ms` if nothing asks
   * for one sooner: many changes that need not be durable at once (a task
   * receiving other clients' ops) cost one write, not one each.
   */
  persistSoon(key: string, ms: number): void {
    if (this.stopped) return
    this.dirty.add(key)
    if (this.queued || this.timer) return
    this.timer = setTimeout(() => {
      this.timer = null
      if (!this.stopped && this.dirty.size > 0) void this.queue()
    }, ms)
    // (Node: not what keeps a process alive; close() writes what is dirty.)
    ;(this.timer as { unref?: () => void }).unref?.()
  }

  /** Refuses further writes once what is dirty is written; resolves when the writes asked for before are done. */
  stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
    if (!this.stopped && this.dirty.size > 0) void this.queue()
    this.stopped = true
    return this.chain
  }

  private queue(): Promise<void> {
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
    return (this.queued ??= this.chain = this.chain.then(() => this.write()))
  }

  private async write(): Promise<void> {
    this.queued = null
    const changes: StorageChanges = {}
    for (const key of this.dirty) changes[key] = this.valueOf(key) ?? null
    this.dirty.clear()
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.storage.save(changes)
      } catch (err) {
        // Nothing is sent before it is recorded, so a failing store stalls sending: keep trying.
        this.onError(new Error(`storage save failed: ${(err as Error).message}`))
        if (this.stopped && attempt > 2) return
        await new Promise((r) => setTimeout(r, Math.min(5000, 200 * 2 ** attempt)))
      }
    }
  }
}
