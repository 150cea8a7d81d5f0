/**
 * A bounded map that forgets the least recently used entry first, nearly: a hit
 * moves its entry to the recent end only when it has not been moved within the
 * last max/2 operations (a hot key is read on every op of its task; moving it
 * each time cost a Map delete and set per read). What is evicted was not read or
 * written in its last max − max/2 operations (gets that hit, sets); at most `max`
 * entries are kept.
 */
interface Entry<V> {
  value: V
  /** The operation count when the entry was last put at the recent end. */
  at: number
}

export class Lru<V> {
  private readonly map = new Map<string, Entry<V>>()
  private ops = 0
  private readonly refreshAfter: number

  constructor(private readonly max: number) {
    this.refreshAfter = Math.max(1, Math.floor(max / 2))
  }

  get(key: string): V | undefined {
    const entry = this.map.get(key)
    if (entry === undefined) return undefined
    const now = ++this.ops
    if (now - entry.at > this.refreshAfter) {
      // Re-inserted so iteration order stays least recent first.
      this.map.delete(key)
      entry.at = now
      this.map.set(key, entry)
    }
    return entry.value
  }

  set(key: string, value: V): void {
    const now = ++this.ops
    const entry = this.map.get(key)
    if (entry !== undefined && now - entry.at <= this.refreshAfter) {
      entry.value = value
      return
    }
    if (entry !== undefined) this.map.delete(key)
    this.map.set(key, { value, at: now })
    if (this.map.size > this.max) this.map.delete(this.map.keys().next().value as string)
  }

  delete(key: string): void {
    this.map.delete(key)
  }

  get size(): number {
    return this.map.size
  }
}
