/**
 * Group commit: commits that become ready while `concurrency` statements are
 * already in flight wait and leave together in the next statement. Under light
 * load each commit goes alone at once (no added latency); under heavy load the
 * round trips and WAL flushes are shared by many tasks. A commit is one task's
 * row, or a chain of its consecutive revs (a hot task's queued ops), never split.
 */
import type { CommitOutcome, CommitRow } from '../storage/task-store.js'
import { isLostRace } from '../storage/errors.js'

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
  private queue: Pending[] = []
  private inFlight = 0
  /** Statements written, rows, time in statements and rows' time queued before theirs left (for the benchmark and metrics). */
  readonly stats = { statements: 0, rows: 0, statementMs: 0, queuedMs: 0 }

  constructor(
    private readonly write: WriteBatch,
    private readonly concurrency: number,
    private readonly maxBatch: number,
  ) {}

  /**
   * Queues one task's row, or its chain of consecutive revs in rev order (at most one
   * commit per task at a time: the caller's per-task queue ensures it); one outcome per row.
   */
  commit(rows: CommitRow[]): Promise<CommitOutcome[]> {
    return new Promise((resolve, reject) => {
      this.queue.push({ rows, at: performance.now(), resolve, reject })
      this.pump()
    })
  }

  private pump(): void {
    while (this.inFlight < this.concurrency && this.queue.length > 0) {
      this.inFlight++
      // Whole commits up to maxBatch rows (at least one commit, whatever its length).
      let n = 1
      for (let rows = this.queue[0].rows.length; n < this.queue.length && rows + this.queue[n].rows.length <= this.maxBatch; n++) rows += this.queue[n].rows.length
      void this.flush(this.queue.splice(0, n))
    }
  }

  /** Frees the statement slot and sends what queued meanwhile. */
  private release(): void {
    this.inFlight--
    this.pump()
  }

  /**
   * Writes one batch in a slot. The slot is freed, and the next batch sent, before
   * this batch's rows are settled: settling runs their fan-out and publications,
   * which would otherwise hold the next statement back.
   */
  private async flush(batch: Pending[]): Promise<void> {
    let outcomes: CommitOutcome[][]
    try {
      outcomes = await this.statement(batch)
    } catch (err) {
      // One row's error (a racing duplicate, a deadlock) must not fail its neighbours:
      // write them one by one, each then fails or succeeds on its own.
      if (batch.length === 1 || !isLostRace(err)) for (const p of batch) p.reject(err)
      else await Promise.all(batch.map((p) => this.statement([p]).then(([o]) => p.resolve(o), (e) => p.reject(e))))
      this.release()
      return
    }
    this.release()
    batch.forEach((p, i) => p.resolve(outcomes[i]))
  }

  /** Writes the batch's commits in one statement: each commit's outcomes. */
  private async statement(batch: Pending[]): Promise<CommitOutcome[][]> {
    const rows = batch.length === 1 ? batch[0].rows : batch.flatMap((p) => p.rows)
    this.stats.statements++
    this.stats.rows += rows.length
    const started = performance.now()
    for (const p of batch) this.stats.queuedMs += (started - p.at) * p.rows.length
    const outcomes = await this.write(rows)
    this.stats.statementMs += performance.now() - started
    if (batch.length === 1) return [outcomes]
    let i = 0
    return batch.map((p) => outcomes.slice(i, (i += p.rows.length)))
  }
}
