/**
 * A starting instance may come up before its PostgreSQL or Redis does (a compose
 * file, a fresh cluster, a host reboot): it retries the connection for up to
 * STARTUP_WAIT_MS, with backoff, and says once what it is waiting for. Errors that
 * waiting cannot fix (a wrong password, a missing database, a bad URL) fail at once.
 */

/** Codes of a service that is not there yet (or not yet accepting): worth another try. */
const NOT_UP_YET = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
  // postgres.js
  'CONNECT_TIMEOUT',
  'CONNECTION_CLOSED',
  'CONNECTION_ENDED',
  'CONNECTION_DESTROYED',
  // breaker.ts: the first connection failed and the probe has not yet seen PostgreSQL
  'CONNECTION_BREAKER_OPEN',
  // PostgreSQL: the database system is starting up / shutting down / in recovery
  '57P03',
  '57P01',
])

/** True for an error that says the service is not reachable yet (the cause chain included). */
export function isNotUpYet(err: unknown): boolean {
  for (let e = err as { code?: unknown; cause?: unknown; message?: unknown } | undefined, depth = 0; e && depth < 5; e = e.cause as typeof e, depth++) {
    if (typeof e.code === 'string' && NOT_UP_YET.has(e.code)) return true
    // ioredis reports a refused first connection as "Connection is closed." with no code.
    if (typeof e.message === 'string' && /Connection is closed|no answer within/.test(e.message)) return true
  }
  return false
}

export interface StartupWaitOptions {
  /** What is awaited, for the log: "PostgreSQL at db:5432". */
  what: string
  waitMs: number
  log: (message: string) => void
  /** Delays between tries (ms): doubles from `firstDelayMs` up to `maxDelayMs`. */
  firstDelayMs?: number
  maxDelayMs?: number
  /** Classifies an error as worth retrying (default isNotUpYet). */
  retryable?: (err: unknown) => boolean
}

/**
 * Runs `attempt` until it succeeds, an error is not retryable, or `waitMs` has passed
 * (then the last error is thrown). Logs once when it starts waiting and once when
 * the service answers after a wait.
 */
export async function untilUp<T>(attempt: () => Promise<T>, opts: StartupWaitOptions): Promise<T> {
  const retryable = opts.retryable ?? isNotUpYet
  const deadline = Date.now() + opts.waitMs
  let delay = opts.firstDelayMs ?? 250
  let waited = false
  for (;;) {
    try {
      const value = await attempt()
      if (waited) opts.log(`${opts.what} answered: starting`)
      return value
    } catch (err) {
      const left = deadline - Date.now()
      if (!retryable(err) || left <= 0) throw err
      if (!waited) opts.log(`${opts.what} is not reachable yet (${(err as Error).message}): retrying for up to ${Math.ceil(left / 1000)} s (STARTUP_WAIT_MS)`)
      waited = true
      await new Promise((resolve) => setTimeout(resolve, Math.min(delay, left)))
      delay = Math.min(delay * 2, opts.maxDelayMs ?? 2000)
    }
  }
}
