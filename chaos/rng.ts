/**
 * Seeded randomness for the chaos run (pure-rand's xoroshiro128+). Each part of
 * the run draws from its own stream, derived from the seed and a name, so the
 * nemesis schedule does not shift when a client happens to draw more numbers.
 */
import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64'
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus'

export class Rng {
  private readonly gen: ReturnType<typeof xoroshiro128plus>

  constructor(readonly seed: number, readonly name = '') {
    let h = seed | 0
    for (const c of name) h = Math.imul(h ^ c.charCodeAt(0), 0x9e3779b1) | 0
    this.gen = xoroshiro128plus(h)
  }

  /** A stream of its own for `name`. */
  fork(name: string): Rng {
    return new Rng(this.seed, `${this.name}/${name}`)
  }

  /** In [0, 1). */
  next(): number {
    return uniformFloat64(this.gen)
  }

  /** An integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1))
  }

  /** A number in [lo, hi). */
  between(lo: number, hi: number): number {
    return lo + this.next() * (hi - lo)
  }

  chance(p: number): boolean {
    return this.next() < p
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('pick from an empty list')
    return items[Math.floor(this.next() * items.length)]
  }

  /** One of `weights`' keys, with probability proportional to its weight. */
  weighted<K extends string>(weights: Partial<Record<K, number>>): K {
    const entries = Object.entries(weights) as [K, number][]
    let x = this.next() * entries.reduce((s, [, w]) => s + w, 0)
    for (const [k, w] of entries) if ((x -= w) < 0) return k
    return entries[entries.length - 1][0]
  }

  /** A UUID v4 drawn from this stream (task ids that replay with the seed). */
  uuid(): string {
    const hex = Array.from({ length: 32 }, () => this.int(0, 15).toString(16))
    hex[12] = '4'
    hex[16] = ((this.int(0, 15) & 0x3) | 0x8).toString(16)
    const s = hex.join('')
    return `${s.slice(0, 8)}-${s.slice(8, 12)}-${s.slice(12, 16)}-${s.slice(16, 20)}-${s.slice(20)}`
  }
}
