/**
 * One promise chain per key: work for the same key runs one at a time, in the
 * order it was queued; different keys run concurrently. This is how an instance
 * commits at most one op per task at a time.
 */
export class KeyedQueue {
  private readonly tails = new Map<string, Promise<void>>()

  /** Runs `fn` after everything queued before it for `key`; resolves or rejects with it. */
  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key)
    const result = prev ? prev.then(fn) : fn()
    // The tail settles with the work, whatever its outcome, and forgets the key when nothing queued behind it.
    const settle = (): void => {
      if (this.tails.get(key) === tail) this.tails.delete(key)
    }
    const tail: Promise<void> = result.then(settle, settle)
    this.tails.set(key, tail)
    return result
  }

  /** Keys with queued or running work. */
  get size(): number {
    return this.tails.size
  }

  /** Resolves when everything queued so far (and anything it queues meanwhile) has settled. */
  async idle(): Promise<void> {
    while (this.tails.size > 0) await Promise.all([...this.tails.values()])
  }
}
