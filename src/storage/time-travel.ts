/**
 * A task as it was: its snapshot at a past rev (replayed from the op log, or
 * from the nearest checkpoint at or below that rev when the log is trimmed),
 * and checkpoints written before the op log is trimmed.
 */
import { sql } from 'drizzle-orm'
import type { Database, Executor } from './db.js'
import { replayOps, type ReplayStart } from '../domain/replay.js'
import type { TaskContent, TaskSnapshot } from '../domain/types.js'
import { iso, loadHistory, loadOps, type HistoryEntry } from './tasks.js'

/** The checkpoint of the task with the highest rev ≤ `rev`, or null. */
async function nearestCheckpoint(database: Database, orgId: string, taskId: string, rev: number, exec?: Executor): Promise<ReplayStart | null> {
  const rows = await database.rows<{ rev: number; content: TaskContent; clock: Record<string, number>; updated_at: string; updated_by: string }>(
    sql`select rev, content, clock, ${iso(sql`updated_at`)} as updated_at, updated_by from task_checkpoints
        where org_id = ${orgId}::uuid and task_id = ${taskId}::uuid and rev <= ${rev}::int order by rev desc limit 1`,
    exec,
  )
  const r = rows[0]
  return r ? { rev: Number(r.rev), content: r.content, clock: r.clock, updatedAt: r.updated_at, updatedBy: r.updated_by } : null
}

/**
 * The snapshot of task `current` at `rev` (1 ≤ rev ≤ current.rev), or null
 * when neither the op log nor a checkpoint reaches back that far.
 */
export async function snapshotAt(database: Database, orgId: string, current: TaskSnapshot, rev: number, exec?: Executor): Promise<TaskSnapshot | null> {
  if (rev === current.rev) return current
  const start = await nearestCheckpoint(database, orgId, current.id, rev, exec)
  if (start?.rev === rev) return replayOps(current.id, current.createdAt, start, [])
  const from = (start?.rev ?? 0) + 1
  const ops = await loadOps(database, orgId, current.id, from, rev - from + 1, exec)
  return replayOps(current.id, current.createdAt, start, ops)
}

/** History entries with from < rev ≤ to (who changed what, rev by rev; history is never trimmed). */
export async function historyBetween(database: Database, orgId: string, taskId: string, from: number, to: number): Promise<HistoryEntry[]> {
  return to > from ? loadHistory(database, orgId, taskId, from + 1, to - from) : []
}

/**
 * Before the op log of a task is trimmed up to `upto`: stores its snapshot at
 * `upto` (replayed from the last checkpoint and the ops still there). Nothing
 * when the log already has a gap there (trimmed before checkpoints existed).
 */
export async function writeCheckpoint(database: Database, exec: Executor, orgId: string, taskId: string, createdAt: string, upto: number): Promise<boolean> {
  const start = await nearestCheckpoint(database, orgId, taskId, upto, exec)
  if (start?.rev === upto) return true
  const from = (start?.rev ?? 0) + 1
  const ops = await loadOps(database, orgId, taskId, from, upto - from + 1, exec)
  const snap = replayOps(taskId, createdAt, start, ops)
  if (!snap || snap.rev !== upto) return false
  const { id: _id, rev: _rev, clock, createdAt: _c, updatedAt, updatedBy, ...content } = snap
  await database.rows(
    sql`insert into task_checkpoints (org_id, task_id, rev, content, clock, updated_at, updated_by)
        values (${orgId}::uuid, ${taskId}::uuid, ${upto}::int, ${JSON.stringify(content)}::jsonb, ${JSON.stringify(clock)}::jsonb, ${updatedAt}::timestamptz, ${updatedBy}::uuid)
        on conflict do nothing`,
    exec,
  )
  return true
}
