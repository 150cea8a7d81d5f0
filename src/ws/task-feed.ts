/**
 * One task's op stream on one instance. Commits reach it from this instance's
 * sequencer and from other instances through the bus, possibly duplicated,
 * reordered or lost; the feed hands them to its members strictly in rev order,
 * exactly once, buffering early arrivals and reading missing revs from the op
 * log. A lost publication therefore never becomes a gap: a later rev, or the
 * periodic probe of the latest rev, reveals it and the log fills it.
 *
 * Members join in two steps so nothing committed meanwhile is lost or doubled:
 * `hold` (before the joiner reads its snapshot or replay), then `release` at the
 * rev that read ended on; the feed then delivers from the next rev.
 */
import type { TaskOp } from '../domain/types.js'
import type { OpEvent } from '../protocol/messages.js'

/** A committed op as the feed carries it. */
export interface FeedEntry {
  event: OpEvent
  /** The task's project after this op; derived from the op when the source did not say. */
  projectId?: string | null
  /** The `op` message, encoded once for every socket that gets it. */
  frame?: Buffer
  /** `event` as JSON when its source had it already (this instance's commits): the frame is made from it. */
  json?: string
  /** Test-only (TASKSYNC_FAULT=drop-publication): members are moved past this op without getting it. */
  lost?: true
}

export interface FeedMember {
  /** One op, in rev order; the member has every rev before it. */
  receive(entry: FeedEntry): void
}

export interface FeedHost<M extends FeedMember = FeedMember> {
  /** Committed ops of the feed's task with rev ≥ fromRev, in rev order, at most `limit`. */
  opsSince(feed: TaskFeed<M>, fromRev: number, limit: number): Promise<OpEvent[]>
  /** Before an entry is delivered: add members that cover the task by scope (project, org). */
  beforeDeliver(feed: TaskFeed<M>, entry: FeedEntry, prevProjectId: string | null | undefined): void
  /** After it was delivered: drop scope members whose scope the op moved the task out of. */
  afterDeliver(feed: TaskFeed<M>, entry: FeedEntry, prevProjectId: string | null | undefined): void
  /** The member cannot be brought up to date (the log no longer holds the revs): it must resync. */
  lost(feed: TaskFeed<M>, member: M): void
  /** A repair failed (storage down); it will be retried. */
  repairFailed?(feed: TaskFeed<M>, err: unknown): void
}

export interface FeedTiming {
  /** How long an out-of-order arrival waits for the missing rev before the log is read. */
  gapGraceMs: number
  /** Longest wait between retries while the log cannot be read. */
  maxRetryMs: number
  /** Recent entries kept to bring a late joiner up to date without a read. */
  recentEntries: number
  /** Most ops read from the log at once. */
  repairBatch: number
}

/** Position of a member whose subscription is still being served. */
export const HOLD = -1

export class TaskFeed<M extends FeedMember = FeedMember> {
  /** Highest rev delivered in order; -1 until a baseline is known. */
  head = -1
  /** The task's project as of `head` (undefined until known). */
  projectId: string | null | undefined = undefined
  /** Member → the last rev it has (HOLD while its subscription is being served). */
  readonly members = new Map<M, number>()
  private pending: Map<number, FeedEntry> | null = null
  private recent: FeedEntry[] = []
  /** Highest rev known to be committed. */
  private known = 0
  private timer: NodeJS.Timeout | null = null
  private repairing = false
  private failures = 0
  private closed = false

  constructor(
    readonly orgId: string,
    readonly taskId: string,
    private readonly host: FeedHost<M>,
    private readonly timing: FeedTiming,
  ) {}

  /** True when the feed has nothing left to do for anyone. */
  get idle(): boolean {
    return this.members.size === 0
  }

  /** Takes in one committed op from any source; duplicates and stale revs are dropped. */
  ingest(entry: FeedEntry): void {
    if (this.closed) return
    const rev = entry.event.rev
    if (rev <= this.head) return
    if (rev > this.known) this.known = rev
    // Nothing precedes a creation: rev 1 is its own baseline.
    if (this.head < 0 && rev === 1) this.head = 0
    if (this.head >= 0 && rev === this.head + 1) {
      this.advance(entry)
      this.drain()
    } else {
      ;(this.pending ??= new Map()).set(rev, entry)
      this.scheduleCheck()
    }
  }

  /** A rev known to be committed (from a probe of the latest rev): repairs a lost last publication. */
  noteCommitted(rev: number): void {
    if (this.closed || rev <= this.known) return
    this.known = rev
    if (this.head >= 0 && rev > this.head) this.scheduleCheck()
  }

  /** Step one of joining: the member gets nothing until `release`. */
  hold(member: M): void {
    this.members.set(member, HOLD)
  }

  /**
   * Step two: the member has every rev up to `rev` (its snapshot or replay).
   * It then gets every later rev exactly once, in order.
   */
  release(member: M, rev: number, projectId?: string | null): void {
    if (this.closed || !this.members.has(member)) return
    if (rev > this.known) this.known = rev
    if (this.head < 0) {
      // The first read is the baseline; arrivals it already covers are dropped.
      this.head = rev
      if (projectId !== undefined) this.projectId = projectId
      if (this.pending) for (const r of this.pending.keys()) if (r <= rev) this.pending.delete(r)
      this.members.set(member, rev)
      this.drain()
      return
    }
    if (rev >= this.head) {
      this.members.set(member, rev)
      if (rev > this.head) this.scheduleCheck()
      return
    }
    this.catchUp(member, rev)
  }

  /** Removes a member (unsubscribe, socket closed). */
  remove(member: M): void {
    this.members.delete(member)
  }

  close(): void {
    this.closed = true
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
    this.pending = null
    this.recent = []
  }

  private advance(entry: FeedEntry): void {
    const prev = this.projectId
    if (entry.projectId === undefined) entry.projectId = projectAfter(entry.event.op, prev)
    const rev = entry.event.rev
    this.host.beforeDeliver(this, entry, prev)
    this.head = rev
    this.projectId = entry.projectId
    this.recent.push(entry)
    if (this.recent.length > this.timing.recentEntries) this.recent.shift()
    // Keys and a lookup rather than entries: no [member, pos] array per member per op.
    for (const member of this.members.keys()) {
      const pos = this.members.get(member)!
      if (pos === rev - 1) {
        this.members.set(member, rev)
        if (!entry.lost) member.receive(entry)
      } else if (pos !== HOLD && pos < rev - 1) {
        // Cannot happen after a release, which leaves no member behind the head; be safe anyway.
        this.catchUp(member, pos)
      }
    }
    this.host.afterDeliver(this, entry, prev)
  }

  private drain(): void {
    const pending = this.pending
    if (pending) {
      for (let next = pending.get(this.head + 1); next; next = pending.get(this.head + 1)) {
        pending.delete(next.event.rev)
        this.advance(next)
      }
      if (pending.size === 0) this.pending = null
    }
    if (this.pending || this.known > this.head) this.scheduleCheck()
  }

  /** A gap (or, before a baseline, a first arrival) waits a moment for late publications. */
  private scheduleCheck(delay = this.timing.gapGraceMs): void {
    if (this.timer || this.repairing || this.closed) return
    this.timer = setTimeout(() => {
      this.timer = null
      if (this.head < 0) this.settleBaseline()
      else void this.repair()
    }, delay)
    this.timer.unref?.()
  }

  /**
   * Without a joiner's read to start from (a feed opened for a project or org
   * subscriber), the earliest arrival after the grace period is where delivery starts.
   */
  private settleBaseline(): void {
    if (this.head >= 0 || !this.pending?.size) return
    const first = Math.min(...this.pending.keys())
    this.head = first - 1
    this.drain()
  }

  private async repair(): Promise<void> {
    if (this.repairing || this.closed) return
    this.repairing = true
    let retry = false
    try {
      while (!this.closed && this.head >= 0 && this.known > this.head && !this.pending?.has(this.head + 1)) {
        const from = this.head + 1
        const ops = await this.host.opsSince(this, from, Math.min(this.known - this.head, this.timing.repairBatch))
        if (this.closed) return
        if (this.head >= from) continue // a live arrival filled it meanwhile
        if (ops.length === 0 || ops[0].rev !== from) {
          this.abandon()
          return
        }
        for (const event of ops) this.ingest({ event })
        this.failures = 0
      }
    } catch (err) {
      this.failures++
      this.host.repairFailed?.(this, err)
      retry = true
    } finally {
      this.repairing = false
    }
    if (retry) this.scheduleCheck(Math.min(this.timing.gapGraceMs * 2 ** this.failures, this.timing.maxRetryMs))
    else if (this.pending || this.known > this.head) this.scheduleCheck()
  }

  /** Brings one member from `from` up to the head: from the recent entries, else the log. */
  private catchUp(member: M, from: number): void {
    this.members.set(member, HOLD)
    const first = this.recent[0]
    if (first && first.event.rev <= from + 1) {
      for (const entry of this.recent) if (entry.event.rev > from) member.receive(entry)
      this.members.set(member, this.head)
      return
    }
    this.host.opsSince(this, from + 1, Math.min(this.head - from, this.timing.repairBatch)).then(
      (ops) => {
        if (this.closed || this.members.get(member) !== HOLD) return
        let last = from
        for (const event of ops) {
          if (event.rev !== last + 1) break
          member.receive({ event })
          last = event.rev
        }
        if (last === from) this.dropMember(member)
        else this.release(member, last)
      },
      () => {
        if (!this.closed && this.members.get(member) === HOLD) this.dropMember(member)
      },
    )
  }

  /** The log no longer holds the missing revs: every member must resync. */
  private abandon(): void {
    for (const member of [...this.members.keys()]) this.dropMember(member)
    this.head = -1
    this.pending = null
    this.recent = []
  }

  private dropMember(member: M): void {
    this.members.delete(member)
    this.host.lost(this, member)
  }
}

/** The task's project after `op`, given the project before it. */
export function projectAfter(op: TaskOp, before: string | null | undefined): string | null | undefined {
  return op.projectId && !op.delete ? op.projectId.set : before
}
