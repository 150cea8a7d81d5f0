/**
 * The reads of `subscribe`, shared between sockets: after an instance is lost,
 * its clients come back on the survivors all at once, ten or more on the same
 * task, and each resume would read its snapshot and its missed ops on its own
 * (two queries per socket through a pool shared with live commits). Here the
 * reads asked for while one is under way wait for it to finish and then go
 * together: one snapshot query for every task asked for by then, one op-log
 * query per task covering every range asked for. A quiet server reads as before
 * (a lone request starts at once); a storm makes few queries, each a bit larger.
 *
 * Every read starts after its request was made, never before: a subscribe joins
 * its feeds (hold) and then asks, so the snapshot it gets is at least as recent
 * as the join (guarantee 4 of subscribe.ts). Ops are immutable once committed,
 * so a wider op read serves each range as exactly as its own read would.
 */
import type { TaskSnapshot } from '../domain/types.js'
import type { OpEvent } from '../protocol/messages.js'
import type { SequencerPort } from './ports.js'

type Reads = Pick<SequencerPort, 'snapshots' | 'opsSince'>

/** Most task ids in one snapshot query. */
const MAX_SNAPSHOT_BATCH = 1000
/** Snapshot queries of one organization under way at once. */
const SNAPSHOT_LANES = 2

interface SnapshotAsk {
  taskIds: string[]
  resolve(m: Map<string, TaskSnapshot>): void
  reject(err: unknown): void
}

interface OpsAsk {
  fromRev: number
  limit: number
  resolve(ops: OpEvent[]): void
  reject(err: unknown): void
}

/** Snapshot asks of one organization waiting for a lane. */
interface OrgSnapshots {
  waiting: SnapshotAsk[]
  running: number
}

/** Op-log asks of one task waiting while its read runs. */
interface TaskOps {
  waiting: OpsAsk[]
  running: boolean
}

export class ResumeReads implements Reads {
  private readonly snapshotQueues = new Map<string, OrgSnapshots>()
  private readonly opsQueues = new Map<string, TaskOps>()
  /** Queries made and asks served, for tests and metrics. */
  readonly stats = { snapshotQueries: 0, snapshotAsks: 0, opsQueries: 0, opsAsks: 0 }

  constructor(private readonly reads: Reads) {}

  snapshots(orgId: string, taskIds: string[]): Promise<Map<string, TaskSnapshot>> {
    this.stats.snapshotAsks++
    return new Promise((resolve, reject) => {
      let q = this.snapshotQueues.get(orgId)
      if (!q) this.snapshotQueues.set(orgId, (q = { waiting: [], running: 0 }))
      q.waiting.push({ taskIds, resolve, reject })
      this.pumpSnapshots(orgId, q)
    })
  }

  opsSince(orgId: string, taskId: string, fromRev: number, limit: number): Promise<OpEvent[]> {
    this.stats.opsAsks++
    return new Promise((resolve, reject) => {
      const key = `${orgId}:${taskId}`
      let q = this.opsQueues.get(key)
      if (!q) this.opsQueues.set(key, (q = { waiting: [], running: false }))
      q.waiting.push({ fromRev, limit, resolve, reject })
      this.pumpOps(orgId, taskId, key, q)
    })
  }

  private pumpSnapshots(orgId: string, q: OrgSnapshots): void {
    while (q.running < SNAPSHOT_LANES && q.waiting.length) {
      // Whole asks, up to the batch size (an ask larger than it goes alone).
      const batch: SnapshotAsk[] = []
      const ids = new Set<string>()
      while (q.waiting.length) {
        const next = q.waiting[0]
        if (batch.length && ids.size + next.taskIds.length > MAX_SNAPSHOT_BATCH) break
        batch.push(q.waiting.shift()!)
        for (const id of next.taskIds) ids.add(id)
      }
      q.running++
      this.stats.snapshotQueries++
      this.reads.snapshots(orgId, [...ids]).then(
        (all) => {
          for (const ask of batch) {
            const mine = new Map<string, TaskSnapshot>()
            for (const id of ask.taskIds) {
              const s = all.get(id)
              if (s) mine.set(id, s)
            }
            ask.resolve(mine)
          }
        },
        (err) => {
          for (const ask of batch) ask.reject(err)
        },
      ).finally(() => {
        q.running--
        if (q.running === 0 && !q.waiting.length) this.snapshotQueues.delete(orgId)
        else this.pumpSnapshots(orgId, q)
      })
    }
  }

  private pumpOps(orgId: string, taskId: string, key: string, q: TaskOps): void {
    if (q.running || !q.waiting.length) return
    const batch = q.waiting.splice(0)
    const from = Math.min(...batch.map((a) => a.fromRev))
    const to = Math.max(...batch.map((a) => a.fromRev + a.limit - 1))
    q.running = true
    this.stats.opsQueries++
    this.reads.opsSince(orgId, taskId, from, to - from + 1).then(
      (ops) => {
        for (const ask of batch) {
          // The read is ascending by rev: each ask takes its own range of it.
          const last = ask.fromRev + ask.limit - 1
          ask.resolve(batch.length === 1 ? ops : ops.filter((e) => e.rev >= ask.fromRev && e.rev <= last))
        }
      },
      (err) => {
        for (const ask of batch) ask.reject(err)
      },
    ).finally(() => {
      q.running = false
      if (!q.waiting.length) this.opsQueues.delete(key)
      else this.pumpOps(orgId, taskId, key, q)
    })
  }
}
