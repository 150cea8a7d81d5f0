/**
 * Group commit: commits that become ready while `concurrency` statements are
 * already in flight wait and leave together in the next statement. Under light
 * load each commit goes alone at once (no added latency); under heavy load the
 * round trips and WAL flushes are shared by many tasks. A commit is one task's
 * row, or a chain of its consecutive revs (a hot task's queued ops), never split.
 *
 * Two lanes: `live` commits (ops based at or near their task's rev: cheap and
 * latency-sensitive) and `catchup` commits (ops based far behind: devices back
 * after a long time). Catch-up batches hold at most `concurrency − 1` statement
 * slots (the one when there is one, taking turns with live batches), so with two
 * slots a live commit waits at most for the live statement ahead of it, never for
 * catch-up statements; and catch-up takes its slot whenever it frees, so a steady
 * stream of live commits cannot starve it.
 * Per task the order is unchanged: a task has at most one commit queued at a time.
 */
import type { CommitOutcome, CommitRow } from '../storage/task-store.js'
import { isLostRace } from '../storage/errors.js'

/** Which queue a commit waits in: `live` leaves first, `catchup` holds at most concurrency − 1 slots. */
export type Lane = 'live' | 'catchup'

interface Pending {
  /** One task's row, or its chain of consecutive revs. */
  rows: CommitRow[]
  /** performance.now() when queued. */
  at: number
  resolve(o: CommitOutcome[]): void
  reject(err: unknown): void
}

/** Writes rows of distinct tasks (or chains of one task's consecutive revs) at once; one outcome per row, in order. */
export type WriteBatch = (rows: CommitRow[]) => Promise<CommitOutcome[]>

export class GroupCommitter {
  private readonly queues: Record<Lane, Pending[]> = { live: [], catchup: [] }
  private inFlight = 0
  private catchupInFlight = 0
  private lastLane: Lane = 'live'
  /** Statement slots catch-up batches may hold at once. */
  private readonly catchupSlots: number
  /**
   * Statements written, rows, time in statements and rows' time queued before theirs
   * left (for the benchmark and metrics); of those, the catch-up lane's rows and their time queued.
   */
  readonly stats = { statements: 0, rows: 0, statementMs: 0, queuedMs: 0, catchupRows: 0, catchupQueuedMs: 0 }

  constructor(
    private readonly write: WriteBatch,
    private readonly concurrency: number,
    private readonly maxBatch: number,
  ) {
    this.catchupSlots = Math.max(1, concurrency - 1)
  }

  /**
   * Queues one task's row, or its chain of consecutive revs in rev order (at most one
   * commit per task at a time: the caller's per-task queue ensures it), in `lane`; one outcome per row.
   */
  commit(rows: CommitRow[], lane: Lane = 'live'): Promise<CommitOutcome[]> {
    return new Promise((resolve, reject) => {
      this.queues[lane].push({ rows, at: performance.now(), resolve, reject })
      this.pump()
    })
  }

  /** Commits waiting for a slot, per lane. */
  get queued(): Readonly<Record<Lane, number>> {
    return { live: this.queues.live.length, catchup: this.queues.catchup.length }
  }

  private pump(): void {
    while (this.inFlight < this.concurrency) {
      // Catch-up takes a slot it may hold when live commits are not waiting, or when the last batch sent was
      // live: it is never starved by a steady stream of live commits, and holds at most catchupSlots.
      const live = this.queues.live.length > 0
      const catchup = this.queues.catchup.length > 0 && this.catchupInFlight < this.catchupSlots
      const lane: Lane | null = catchup && (!live || this.lastLane === 'live') ? 'catchup' : live ? 'live' : null
      if (lane === null) return
      this.lastLane = lane
      const queue = this.queues[lane]
      this.inFlight++
      if (lane === 'catchup') this.catchupInFlight++
      // Whole commits up to maxBatch rows (at least one commit, whatever its length).
      let n = 1
      for (let rows = queue[0].rows.length; n < queue.length && rows + queue[n].rows.length <= this.maxBatch; n++) rows += queue[n].rows.length
      void this.flush(queue.splice(0, n), lane)
    }
  }

  /** Frees the statement slot and sends what queued meanwhile. */
  private release(lane: Lane): void {
    this.inFlight--
    if (lane === 'catchup') this.catchupInFlight--
    this.pump()
  }

  /**
   * Writes one batch in a slot. The slot is freed, and the next batch sent, before
   * this batch's rows are settled: settling runs their fan-out and publications,
   * which would otherwise hold the next statement back.
   */
  private async flush(batch: Pending[], lane: Lane): Promise<void> {
    let outcomes: CommitOutcome[][]
    try {
      outcomes = await this.statement(batch, lane)
    } catch (err) {
      // One row's error (a racing duplicate, a deadlock) must not fail its neighbours:
      // write them one by one, each then fails or succeeds on its own.
      if (batch.length === 1 || !isLostRace(err)) for (const p of batch) p.reject(err)
      else await Promise.all(batch.map((p) => this.statement([p], lane).then(([o]) => p.resolve(o), (e) => p.reject(e))))
      this.release(lane)
      return
    }
    this.release(lane)
    batch.forEach((p, i) => p.resolve(outcomes[i]))
  }

  /** Writes the batch's commits in one statement: each commit's outcomes. */
  private async statement(batch: Pending[], lane: Lane): Promise<CommitOutcome[][]> {
    const rows = batch.length === 1 ? batch[0].rows : batch.flatMap((p) => p.rows)
    this.stats.statements++
    this.stats.rows += rows.length
    const started = performance.now()
    let queuedMs = 0
    for (const p of batch) queuedMs += (started - p.at) * p.rows.length
    this.stats.queuedMs += queuedMs
    if (lane === 'catchup') {
      this.stats.catchupRows += rows.length
      this.stats.catchupQueuedMs += queuedMs
    }
    const outcomes = await this.write(rows)
    this.stats.statementMs += performance.now() - started
    if (batch.length === 1) return [outcomes]
    let i = 0
    return batch.map((p) => outcomes.slice(i, (i += p.rows.length)))
  }
}
