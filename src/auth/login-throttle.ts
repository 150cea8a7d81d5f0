/**
 * Per-account login throttling, beside the per-address rate limit: a guess at one
 * account spread over many addresses is slowed too. Failed logins of an email are
 * counted over a window; from the `maxFailures`-th on, each failure locks the
 * account for 1, 2, 4… seconds, never more than `lockMaxS`, and a locked account
 * answers 429 before its password is even checked (a right and a wrong password
 * read the same). The lock cannot keep the owner out for long: it is short, a
 * success clears it, and a login naming one of the user's live devices (the app
 * they already use) is not subject to it. Unknown emails are counted the same way,
 * so the throttle tells nothing of which accounts exist. Shared through Redis
 * when there is one, so every instance sees the same count.
 */
import type { Redis } from 'ioredis'

export interface LoginThrottleOptions {
  maxFailures: number
  lockMaxS: number
  /** Seconds failures are counted over (a success resets the count). */
  windowS: number
  /** Redis and a key prefix to share the counts between instances; in-process otherwise. */
  redis?: Redis
  prefix?: string
}

export interface LoginThrottle {
  /** Seconds until the account may try again, or 0. */
  lockedFor(email: string): Promise<number>
  failed(email: string): Promise<void>
  succeeded(email: string): Promise<void>
}

/** The lock after the `count`-th failure: 0 below the threshold, then 1, 2, 4… s up to lockMaxS. */
export function lockSeconds(count: number, o: Pick<LoginThrottleOptions, 'maxFailures' | 'lockMaxS'>): number {
  if (count < o.maxFailures) return 0
  return Math.min(2 ** Math.min(count - o.maxFailures, 30), o.lockMaxS)
}

export function loginThrottle(o: LoginThrottleOptions): LoginThrottle {
  return o.redis ? redisThrottle(o, o.redis, o.prefix ?? '') : memoryThrottle(o)
}

function redisThrottle(o: LoginThrottleOptions, redis: Redis, prefix: string): LoginThrottle {
  const count = (email: string) => `${prefix}login:failures:${email}`
  const lock = (email: string) => `${prefix}login:lock:${email}`
  return {
    async lockedFor(email) {
      const ms = await redis.pttl(lock(email))
      return ms > 0 ? Math.ceil(ms / 1000) : 0
    },
    async failed(email) {
      const [[, n]] = (await redis.multi().incr(count(email)).expire(count(email), o.windowS).exec()) as [[unknown, number]]
      const s = lockSeconds(n, o)
      if (s > 0) await redis.set(lock(email), '1', 'EX', s)
    },
    async succeeded(email) {
      await redis.del(count(email), lock(email))
    },
  }
}

const MAX_ENTRIES = 100_000

function memoryThrottle(o: LoginThrottleOptions): LoginThrottle {
  const entries = new Map<string, { count: number; windowEnds: number; lockedUntil: number }>()
  const live = (email: string) => {
    const e = entries.get(email)
    if (e && e.windowEnds <= Date.now() && e.lockedUntil <= Date.now()) entries.delete(email)
    return entries.get(email)
  }
  return {
    async lockedFor(email) {
      const e = live(email)
      return e && e.lockedUntil > Date.now() ? Math.ceil((e.lockedUntil - Date.now()) / 1000) : 0
    },
    async failed(email) {
      const now = Date.now()
      let e = live(email)
      if (!e || e.windowEnds <= now) {
        if (entries.size >= MAX_ENTRIES) entries.clear()
        e = { count: 0, windowEnds: now + o.windowS * 1000, lockedUntil: 0 }
        entries.set(email, e)
      }
      e.count++
      const s = lockSeconds(e.count, o)
      if (s > 0) e.lockedUntil = now + s * 1000
    },
    async succeeded(email) {
      entries.delete(email)
    },
  }
}
