/**
 * Op ranges: the recent op log of each task read by catch-ups, held in memory a
 * short while, each op kept as the JSON of its `op` message. Devices coming back
 * together read the same revs of the same task (a resume, a REST catch-up from
 * the log, the transform of an edit based on an old rev): one read of the log
 * then serves them all, and its JSON is made once, not once per device.
 *
 * A committed op never changes (rev r of a task is written once), so a range can
 * be served for as long as it is kept; what the log trims or purges later may
 * still be answered from here for a moment, which is true data, never a gap.
 * Reads of one task wait for the one under way (concurrent catch-ups coalesce);
 * a request that reaches past what is held reads only the revs after it. Bounded
 * by the JSON held in all, per task, and by age.
 */
import type { StoredOp, TaskStore } from '../task-store.js'

/** Reads the op log: revs ≥ fromRev in rev order, at most `limit` (TaskStore.loadOps). */
export type LoadOps = (orgId: string, taskId: string, fromRev: number, limit: number) => Promise<StoredOp[]>

export interface OpRangeLimits {
  /** JSON characters held in all (about bytes: op JSON is mostly ASCII). */
  maxChars: number
  /** Ops held per task: the newest are kept. */
  maxOpsPerTask: number
  /** A range not read for this long is dropped. */
  idleMs: number
  /** A range is dropped this long after it was first read, however busy (nothing is held for ever). */
  maxAgeMs: number
}

export const DEFAULT_OP_RANGE_LIMITS: OpRangeLimits = { maxChars: 32 * 1024 * 1024, maxOpsPerTask: 4096, idleMs: 30_000, maxAgeMs: 120_000 }

/** Consecutive ops of one task: `json[i]` is the `op` message of rev `first + i`. */
export interface OpRange {
  first: number
  json: string[]
}

interface Held extends OpRange {
  chars: number
  bornAt: number
  usedAt: number
  /** The read under way for this task; later requests wait for it. */
  loading: Promise<unknown> | null
}

export interface OpRangeStats {
  /** Requests answered whole from memory. */
  hits: number
  /** Reads of the log (each one request's missing revs). */
  reads: number
  /** Ops those reads returned. */
  readOps: number
  /** Requests that waited for another one's read of the same task. */
  coalesced: number
}

const EMPTY: OpRange = { first: 0, json: [] }

/** Ops parsed in one go by `ops` before it yields (a catch-up ~1,000 revs long is parsed in slices). */
const PARSE_SLICE = 256

/** The `op` message of a stored op, as JSON (the key order of the sequencer's own events). */
export function opEventJson(taskId: string, o: StoredOp): string {
  return JSON.stringify({ type: 'op', taskId, rev: o.rev, op: o.op, userId: o.userId, deviceId: o.deviceId, clientId: o.clientId, seq: o.seq, at: o.at })
}

export class OpRanges {
  /** Key → range, least recently used first (a use moves it to the end). */
  private readonly held = new Map<string, Held>()
  private chars = 0
  readonly stats: OpRangeStats = { hits: 0, reads: 0, readOps: 0, coalesced: 0 }

  constructor(
    private readonly load: LoadOps,
    private readonly limits: OpRangeLimits = DEFAULT_OP_RANGE_LIMITS,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** JSON characters held now. */
  get size(): number {
    return this.chars
  }

  /**
   * The task's ops with rev ≥ fromRev, at most `limit`, consecutive from fromRev, as
   * `op` message JSON. Fewer when the log ends sooner; when the log does not hold
   * fromRev (trimmed), what it returns from its first rev on, as loadOps would.
   */
  async range(orgId: string, taskId: string, fromRev: number, limit: number): Promise<OpRange> {
    if (limit <= 0) return EMPTY
    const key = `${orgId}:${taskId}`
    let waited = false
    for (;;) {
      const now = this.now()
      this.sweep(now)
      const h = this.held.get(key)
      if (h?.loading) {
        if (!waited) this.stats.coalesced++
        waited = true
        await h.loading.catch(() => {})
        continue
      }
      const end = fromRev + limit - 1
      if (h && fromRev >= h.first && end <= last(h)) {
        this.stats.hits++
        this.touch(key, h, now)
        return slice(h, fromRev, limit)
      }
      if (h && fromRev >= h.first && fromRev - (last(h) + 1) <= limit) {
        // Reaches past what is held (or starts a little after it): only the revs after it are read.
        const before = slice(h, fromRev, limit)
        const after = last(h) + 1
        const fresh = await this.read(key, h, taskId, this.load(orgId, taskId, after, end - after + 1), after, 'append')
        this.touch(key, h, now)
        if (before.json.length > 0) return { first: fromRev, json: [...before.json, ...fresh] }
        const skip = fromRev - after
        return fresh.length > skip ? { first: fromRev, json: fresh.slice(skip) } : EMPTY
      }
      if (h && fromRev < h.first && end >= h.first - 1) {
        // Starts before it: the revs before it are read and joined to it, then the request is served as above.
        const fresh = await this.read(key, h, taskId, this.load(orgId, taskId, fromRev, h.first - fromRev), fromRev, 'prepend')
        if (fresh.length > 0 && this.held.get(key) === h && h.first === fromRev) continue
        return fresh.length > 0 ? { first: fromRev, json: fresh } : answer(taskId, await this.readOnly(this.load(orgId, taskId, fromRev, limit)))
      }
      if (h) {
        // Apart from what is held (another reader far behind or ahead): read, answered, not kept.
        return answer(taskId, await this.readOnly(this.load(orgId, taskId, fromRev, limit)))
      }
      const slot: Held = { first: fromRev, json: [], chars: 0, bornAt: now, usedAt: now, loading: null }
      this.held.set(key, slot)
      let rows: StoredOp[] = []
      const fresh = await this.read(key, slot, taskId, this.load(orgId, taskId, fromRev, limit).then((r) => (rows = r)), fromRev, 'start')
      if (slot.json.length === 0) this.drop(key, slot)
      else this.touch(key, slot, now)
      // Nothing from fromRev on, or a log that starts later (trimmed): its answer as it is.
      return fresh.length > 0 ? { first: fromRev, json: fresh } : answer(taskId, rows)
    }
  }

  /**
   * Runs one read with later requests of the task waiting on it. Answers the JSON of
   * the rows that follow on from `from` without a gap, and adds them to the range
   * (after it, before it, or as its start) while it is still the one held.
   */
  private async read(key: string, h: Held, taskId: string, reading: Promise<StoredOp[]>, from: number, at: 'start' | 'append' | 'prepend'): Promise<string[]> {
    h.loading = reading
    let rows: StoredOp[]
    try {
      rows = await this.readOnly(reading)
    } catch (err) {
      if (h.json.length === 0) this.drop(key, h)
      throw err
    } finally {
      h.loading = null
    }
    const fresh: string[] = []
    let chars = 0
    for (let i = 0; i < rows.length && rows[i].rev === from + i; i++) {
      const j = opEventJson(taskId, rows[i])
      fresh.push(j)
      chars += j.length
    }
    if (fresh.length === 0 || this.held.get(key) !== h) return fresh
    if (at === 'prepend') {
      // Only a run that ends right before the held range joins it.
      if (from + fresh.length !== h.first) return fresh
      h.json = [...fresh, ...h.json]
      h.first = from
    } else if (at === 'append') {
      if (from !== last(h) + 1) return fresh
      for (const j of fresh) h.json.push(j)
    } else {
      h.first = from
      h.json = fresh.slice()
    }
    h.chars += chars
    this.chars += chars
    this.bound(key, h)
    return fresh
  }

  private async readOnly(reading: Promise<StoredOp[]>): Promise<StoredOp[]> {
    const rows = await reading
    this.stats.reads++
    this.stats.readOps += rows.length
    return rows
  }

  /** As TaskStore.loadOps, from the held ranges; a long range is parsed in slices, yielding to the event loop between them. */
  async ops(orgId: string, taskId: string, fromRev: number, limit: number): Promise<StoredOp[]> {
    const { json } = await this.range(orgId, taskId, fromRev, limit)
    const out: StoredOp[] = new Array(json.length)
    for (let i = 0; i < json.length; i++) {
      if (i > 0 && i % PARSE_SLICE === 0) await new Promise<void>((resolve) => setImmediate(resolve))
      out[i] = toStored(json[i])
    }
    return out
  }

  /** Forgets every range (tests; a database restored under a running instance). */
  clear(): void {
    this.held.clear()
    this.chars = 0
  }

  private touch(key: string, h: Held, now: number): void {
    h.usedAt = now
    this.held.delete(key)
    this.held.set(key, h)
  }

  private drop(key: string, h: Held): void {
    if (this.held.get(key) !== h) return
    this.held.delete(key)
    this.chars -= h.chars
  }

  /** Keeps the newest ops of a range within the per-task cap, then the total within budget (least recently used first). */
  private bound(key: string, h: Held): void {
    if (this.held.get(key) !== h) return
    const over = h.json.length - this.limits.maxOpsPerTask
    if (over > 0) {
      let cut = 0
      for (let i = 0; i < over; i++) cut += h.json[i].length
      h.json = h.json.slice(over)
      h.first += over
      h.chars -= cut
      this.chars -= cut
    }
    for (const [k, other] of this.held) {
      if (this.chars <= this.limits.maxChars) break
      if (other.loading || k === key) continue
      this.drop(k, other)
    }
    // Alone over budget: answered once, not kept.
    if (this.chars > this.limits.maxChars) this.drop(key, h)
  }

  /** Drops ranges idle or old past their limits (the least recently used come first). */
  private sweep(now: number): void {
    for (const [k, h] of this.held) {
      if (h.loading) continue
      if (now - h.usedAt > this.limits.idleMs || now - h.bornAt > this.limits.maxAgeMs) this.drop(k, h)
      else if (now - h.usedAt <= this.limits.idleMs) break
    }
  }
}

const last = (h: OpRange): number => h.first + h.json.length - 1

/** Rows read and not kept, as a range: from the first rev the log returned, up to a gap (there is none in a log). */
function answer(taskId: string, rows: StoredOp[]): OpRange {
  const json: string[] = []
  for (let i = 0; i < rows.length && rows[i].rev === rows[0].rev + i; i++) json.push(opEventJson(taskId, rows[i]))
  return json.length > 0 ? { first: rows[0].rev, json } : EMPTY
}

function slice(h: OpRange, fromRev: number, limit: number): OpRange {
  const start = Math.max(0, fromRev - h.first)
  const json = h.json.slice(start, start + limit)
  return json.length > 0 ? { first: h.first + start, json } : EMPTY
}

function toStored(json: string): StoredOp {
  const e = JSON.parse(json) as StoredOp & { type?: string; taskId?: string }
  return { rev: e.rev, op: e.op, userId: e.userId, deviceId: e.deviceId, clientId: e.clientId, seq: e.seq, at: e.at }
}

/** The store with loadOps served through `ranges` (reads under a task lock still go to the database). */
export function withOpRanges(store: TaskStore, ranges: OpRanges): TaskStore {
  return new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === 'loadOps') return (orgId: string, taskId: string, fromRev: number, limit: number) => ranges.ops(orgId, taskId, fromRev, limit)
      return Reflect.get(target, prop, receiver)
    },
  })
}
