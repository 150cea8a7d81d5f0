/**
 * Reconnect delays: full-jitter exponential backoff (a random delay in
 * [0, ceiling]), so a fleet reconnecting after a server restart spreads out
 * instead of arriving at once.
 *
 * The ceiling depends on how the last attempt failed:
 * - **unanswered** (the socket never opened: connection refused, host
 *   unreachable, DNS, an upgrade answered with an HTTP error, which browsers do
 *   not tell apart): base·2^attempt, but never above `unansweredMaxMs` (4 s).
 *   The address is gone or a balancer has not moved the client yet; trying
 *   again costs nothing, and once another instance answers, the client should
 *   be there within seconds, not after a wait grown to tens of seconds while
 *   nothing answered.
 * - **answered** (the server took the socket and closed it, or refused the
 *   hello; 1013 and `forbidden` also skip steps ahead): base·2^attempt up to
 *   `maxMs` (30 s). The server is there and says it cannot serve: back off.
 */
export interface BackoffOptions {
  /** First ceiling, in ms (default 500). */
  baseMs?: number
  /** Largest ceiling after answered failures, in ms (default 30 000). */
  maxMs?: number
  /** Largest ceiling after a failure nothing answered, in ms (default 4 000; at most `maxMs`). */
  unansweredMaxMs?: number
}

/** How the last attempt failed: nothing answered, or a server closed or refused it. */
export type Failure = 'unanswered' | 'answered'

/** The ceiling of the next delay (pure): attempt counts failures since the last welcome, plus escalations. */
export function backoffCeiling(attempt: number, failure: Failure, o: Required<BackoffOptions>): number {
  const grown = o.baseMs * 2 ** Math.min(Math.max(0, attempt), 30)
  return Math.min(failure === 'unanswered' ? Math.min(o.unansweredMaxMs, o.maxMs) : o.maxMs, grown)
}

export class Backoff {
  private attempt = 0
  private readonly opts: Required<BackoffOptions>
  constructor(opts: BackoffOptions = {}, private readonly random: () => number = Math.random) {
    this.opts = { baseMs: opts.baseMs ?? 500, maxMs: opts.maxMs ?? 30_000, unansweredMaxMs: opts.unansweredMaxMs ?? 4000 }
  }

  /** The delay before the next attempt; each call raises the ceiling (up to the cap of that kind of failure). */
  next(failure: Failure = 'answered'): number {
    const ceiling = backoffCeiling(this.attempt, failure, this.opts)
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
