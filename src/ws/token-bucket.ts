/**
 * A token bucket: `ratePerS` tokens a second, at most `burst` saved up. Two
 * numbers of state per bucket (the spec is shared), so one per socket is cheap.
 */
export interface RateSpec {
  readonly ratePerS: number
  readonly burst: number
}

export class TokenBucket {
  private tokens: number
  private at: number

  constructor(
    private readonly spec: RateSpec,
    now: number,
  ) {
    this.tokens = spec.burst
    this.at = now
  }

  /** Takes one token; false when the bucket is empty (the caller rejects the message). */
  take(now: number): boolean {
    const elapsed = now - this.at
    if (elapsed > 0) {
      this.tokens = Math.min(this.spec.burst, this.tokens + (elapsed * this.spec.ratePerS) / 1000)
      this.at = now
    }
    if (this.tokens < 1) return false
    this.tokens -= 1
    return true
  }
}
