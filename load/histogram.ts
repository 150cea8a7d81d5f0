/** Fixed-bucket latency histogram (0.1 ms resolution up to 10 s): cheap to record, exact to merge. */
export const BUCKET_MS = 0.1
export const BUCKETS = 100_000

export class Histogram {
  readonly counts: number[]
  count = 0
  /** The lowest and highest bucket that may be non-zero (toSparse and merge read only those). */
  private lo = BUCKETS + 1
  private hi = -1
  constructor(counts?: number[]) {
    this.counts = counts ?? new Array(BUCKETS + 1).fill(0)
    if (counts) {
      this.count = counts.reduce((a, b) => a + b, 0)
      this.lo = 0
      this.hi = BUCKETS
    }
  }
  private touch(i: number): void {
    if (i < this.lo) this.lo = i
    if (i > this.hi) this.hi = i
  }
  record(ms: number): void {
    const i = Math.min(BUCKETS, Math.max(0, Math.floor(ms / BUCKET_MS)))
    this.counts[i]++
    this.count++
    this.touch(i)
  }
  merge(other: Histogram): void {
    if (other.hi < other.lo) return
    for (let i = other.lo; i <= other.hi; i++) this.counts[i] += other.counts[i]
    this.count += other.count
    this.touch(other.lo)
    this.touch(other.hi)
  }
  percentile(p: number): number {
    if (this.count === 0) return NaN
    const target = Math.ceil((p / 100) * this.count)
    let seen = 0
    for (let i = 0; i <= BUCKETS; i++) {
      seen += this.counts[i]
      if (seen >= target) return (i + 1) * BUCKET_MS
    }
    return BUCKETS * BUCKET_MS
  }
  /** Sparse form for IPC: [index, count] pairs. */
  toSparse(): [number, number][] {
    const out: [number, number][] = []
    for (let i = this.lo; i <= this.hi; i++) if (this.counts[i]) out.push([i, this.counts[i]])
    return out
  }
  static fromSparse(pairs: [number, number][]): Histogram {
    const h = new Histogram()
    for (const [i, c] of pairs) {
      h.counts[i] += c
      h.count += c
      h.touch(i)
    }
    return h
  }
}
