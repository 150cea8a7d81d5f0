/**
 * Group commit: commits that become ready while `concurrency` statements are
 * already in flight wait and leave together in the next statement. Under light
 * load each commit goes alone at once (no added latency); under heavy load the
 * round trips and WAL flushes are shared by many tasks.
 */
import type { CommitOutcome, CommitRow, MutationRecord } from '../storage/tasks-commit.js'
import { commitKey } from '../storage/tasks-commit.js'
import { isLostRace } from './db-errors.js'

/** What happened to one row: written, already recorded for its (clientId, seq), or beaten by another commit. */
export type RowOutcome = { kind: 'committed' } | { kind: 'duplicate'; record: MutationRecord } | { kind: 'lost' }

interface Pending {
  row: CommitRow
  resolve(o: RowOutcome): void
  reject(err: unknown): void
}

export type WriteBatch = (rows: CommitRow[]) => Promise<CommitOutcome>

export class GroupCommitter {
  private queue: Pending[] = []
  private inFlight = 0
  /** Statements written and rows per statement, for the benchmark and metrics. */
  readonly stats = { statements: 0, rows: 0, statementMs: 0 }

  constructor(
    private readonly write: WriteBatch,
    private readonly concurrency: number,
    private readonly maxBatch: number,
  ) {}

  /** Queues one row (at most one per task at a time: the caller's per-task queue ensures it). */
  commit(row: CommitRow): Promise<RowOutcome> {
    return new Promise((resolve, reject) => {
      this.queue.push({ row, resolve, reject })
      this.pump()
    })
  }

  private pump(): void {
    while (this.inFlight < this.concurrency && this.queue.length > 0) {
      const batch = this.queue.splice(0, this.maxBatch)
      this.inFlight++
      void this.flush(batch).finally(() => {
        this.inFlight--
        this.pump()
      })
    }
  }

  private async flush(batch: Pending[]): Promise<void> {
    let outcome: CommitOutcome
    try {
      this.stats.statements++
      this.stats.rows += batch.length
      const started = performance.now()
      outcome = await this.write(batch.map((p) => p.row))
      this.stats.statementMs += performance.now() - started
    } catch (err) {
      // One row's error (a racing duplicate, a deadlock) must not fail its neighbours:
      // write them one by one, each then fails or succeeds on its own.
      if (batch.length === 1 || !isLostRace(err)) for (const p of batch) p.reject(err)
      else await Promise.all(batch.map((p) => this.flush([p])))
      return
    }
    for (const p of batch) {
      const key = commitKey(p.row.orgId, p.row.taskId)
      const dup = outcome.duplicates.get(key)
      if (outcome.committed.has(key)) p.resolve({ kind: 'committed' })
      else if (dup) p.resolve({ kind: 'duplicate', record: dup })
      else p.resolve({ kind: 'lost' })
    }
  }
}
