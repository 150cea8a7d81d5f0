/**
 * The catch-up gate: REST catch-up work (push, pull, op log pages) runs at most
 * `concurrency` requests at a time per instance, the rest waiting their turn.
 * Devices coming back together would otherwise all be in progress at once,
 * and every turn of the event loop would carry their reads, replies and
 * transforms ahead of the live commits and their fan-out, which never pass
 * through here. Past `maxWaiting` a request is refused with `unavailable` and a
 * retry delay before anything of it ran (nothing committed, safe to resend).
 *
 * Turns: a request of a device (its `key`) that was admitted within the last
 * `followUpMs` is a follow-up of a catch-up under way and goes before the
 * requests of devices that have not started yet (each line in arrival order).
 * A device's catch-up is a chain of requests (push, pull, op pages): in one
 * line, each of them would wait behind every other device's, and all would
 * finish near the end; this way the devices finish one after another.
 */
import { TaskSyncError } from '../protocol/errors.js'

export interface CatchupGateStats {
  /** Requests that ran (at once or after waiting). */
  admitted: number
  /** Of them, those that went ahead as follow-ups of a device's catch-up under way. */
  followUps: number
  /** Requests refused because `maxWaiting` were already waiting. */
  refused: number
  /** Sum of the waits of the admitted requests, in ms. */
  waitedMs: number
}

/** How long after its last admission a device's next request still counts as a follow-up (ms). */
export const FOLLOW_UP_MS = 10_000

export class CatchupGate {
  private running = 0
  /** Follow-ups of catch-ups under way, then first requests: each in arrival order. */
  private readonly followUps: Array<() => void> = []
  private readonly firsts: Array<() => void> = []
  /** key → when it was last admitted (Map order: oldest admission first). */
  private readonly recent = new Map<string, number>()
  readonly stats: CatchupGateStats = { admitted: 0, followUps: 0, refused: 0, waitedMs: 0 }

  constructor(
    readonly concurrency: number,
    readonly maxWaiting: number,
    readonly followUpMs = FOLLOW_UP_MS,
    private readonly clock: () => number = () => performance.now(),
  ) {
    if (!(concurrency >= 1) || !(maxWaiting >= 0)) throw new RangeError('a catch-up gate needs concurrency ≥ 1 and maxWaiting ≥ 0')
  }

  /** Requests running now. */
  get active(): number {
    return this.running
  }

  /** Requests waiting now. */
  get waiting(): number {
    return this.followUps.length + this.firsts.length
  }

  /**
   * Runs `fn` when a slot is free; `unavailable` (with `details.retryAfterS`) when too many wait already.
   * `key` names who asks (a device): its requests within `followUpMs` of its last admission go first.
   */
  async run<T>(fn: () => Promise<T>, key?: string): Promise<T> {
    const followUp = key !== undefined && this.isFollowUp(key)
    if (this.running >= this.concurrency) {
      if (this.waiting >= this.maxWaiting) {
        this.stats.refused++
        // About how long the queue ahead takes to drain, whole seconds, jittered by the client.
        throw new TaskSyncError('unavailable', 'the server is busy with other catch-ups; retry shortly', { retryAfterS: 1 })
      }
      const queued = performance.now()
      await new Promise<void>((resolve) => (followUp ? this.followUps : this.firsts).push(resolve))
      this.stats.waitedMs += performance.now() - queued
    } else {
      this.running++
    }
    this.stats.admitted++
    if (followUp) this.stats.followUps++
    if (key !== undefined) this.admittedNow(key)
    try {
      return await fn()
    } finally {
      if (key !== undefined) this.admittedNow(key) // its next request follows this one's end
      // The slot passes straight to the next in line (running stays counted), or frees.
      const next = this.followUps.shift() ?? this.firsts.shift()
      if (next) next()
      else this.running--
    }
  }

  private isFollowUp(key: string): boolean {
    const at = this.recent.get(key)
    return at !== undefined && this.clock() - at <= this.followUpMs
  }

  private admittedNow(key: string): void {
    const now = this.clock()
    this.recent.delete(key)
    this.recent.set(key, now)
    // Forget devices not seen for longer than a follow-up may come (oldest first).
    for (const [k, at] of this.recent) {
      if (now - at <= this.followUpMs) break
      this.recent.delete(k)
    }
  }
}
