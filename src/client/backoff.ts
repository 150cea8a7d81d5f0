/**
 * Reconnect delays: full-jitter exponential backoff (a random delay in
 * [0, min(max, base·2^attempt)]), so a fleet reconnecting after a server restart
 * spreads out instead of arriving at once.
 */
export interface BackoffOptions {
  /** First ceiling, in ms (default 500). */
  baseMs?: number
  /** Largest ceiling, in ms (default 30 000). */
  maxMs?: number
}

export class Backoff {
  private attempt = 0
  private readonly base: number
  private readonly max: number
  constructor(opts: BackoffOptions = {}, private readonly random: () => number = Math.random) {
    this.base = opts.baseMs ?? 500
    this.max = opts.maxMs ?? 30_000
  }

  /** The delay before the next attempt; each call raises the ceiling. */
  next(): number {
    const ceiling = Math.min(this.max, this.base * 2 ** Math.min(this.attempt, 30))
    this.attempt++
    return Math.floor(this.random() * ceiling)
  }

  /** Skips ahead (an overloaded server asks for a longer pause). */
  escalate(steps: number): void {
    this.attempt += steps
  }

  /** Called once a connection proved healthy. */
  reset(): void {
    this.attempt = 0
  }
}
