/**
 * The catch-up gate: REST catch-up work (push, pull, op log pages) runs at most
 * `concurrency` requests at a time per instance, the rest waiting in arrival
 * order. Devices coming back together would otherwise all be in progress at once,
 * and every turn of the event loop would carry their reads, replies and
 * transforms ahead of the live commits and their fan-out, which never pass
 * through here. Past `maxWaiting` a request is refused with `unavailable` and a
 * retry delay before anything of it ran (nothing committed, safe to resend).
 */
import { TaskSyncError } from '../protocol/errors.js'

export interface CatchupGateStats {
  /** Requests that ran (at once or after waiting). */
  admitted: number
  /** Requests refused because `maxWaiting` were already waiting. */
  refused: number
  /** Sum of the waits of the admitted requests, in ms. */
  waitedMs: number
}

export class CatchupGate {
  private running = 0
  private readonly queue: Array<() => void> = []
  readonly stats: CatchupGateStats = { admitted: 0, refused: 0, waitedMs: 0 }

  constructor(
    readonly concurrency: number,
    readonly maxWaiting: number,
  ) {
    if (!(concurrency >= 1) || !(maxWaiting >= 0)) throw new RangeError('a catch-up gate needs concurrency ≥ 1 and maxWaiting ≥ 0')
  }

  /** Requests running now. */
  get active(): number {
    return this.running
  }

  /** Requests waiting now. */
  get waiting(): number {
    return this.queue.length
  }

  /** Runs `fn` when a slot is free; `unavailable` (with `details.retryAfterS`) when too many wait already. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.running >= this.concurrency) {
      if (this.queue.length >= this.maxWaiting) {
        this.stats.refused++
        // About how long the queue ahead takes to drain, whole seconds, jittered by the client.
        throw new TaskSyncError('unavailable', 'the server is busy with other catch-ups; retry shortly', { retryAfterS: 1 })
      }
      const queued = performance.now()
      await new Promise<void>((resolve) => this.queue.push(resolve))
      this.stats.waitedMs += performance.now() - queued
    } else {
      this.running++
    }
    this.stats.admitted++
    try {
      return await fn()
    } finally {
      // The slot passes straight to the next in line (running stays counted), or frees.
      const next = this.queue.shift()
      if (next) next()
      else this.running--
    }
  }
}
