/**
 * Task reads: snapshots, the op log, history and the filtered list. Raw SQL so the
 * same statements run on postgres.js and PGlite; timestamps are formatted in SQL
 * (RFC 3339 UTC with milliseconds) because the two drivers return them differently.
 */
import { sql, type SQL } from 'drizzle-orm'
import type { Database, Executor } from './db.js'
import type { JsonValue, TaskContent, TaskOp, TaskSnapshot } from '../domain/types.js'
import type { OpEvent } from '../protocol/messages.js'
import { toSnapshot } from '../domain/snapshot.js'
import type { StoredOp } from './task-store.js'

/** SQL for a timestamptz column as `YYYY-MM-DDTHH:MM:SS.mmmZ`. */
export const iso = (col: SQL): SQL => sql`to_char(${col} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`

/** A `tasks` row as snapshotColumns selects it. */
export interface TaskRow {
  id: string
  rev: number
  content: TaskContent
  clock: Record<string, number>
  created_at: string
  updated_at: string
  updated_by: string
}

/** The columns of a snapshot, unqualified (a join must leave `id` unambiguous, e.g. `using (org_id, id)`). */
export const snapshotColumns = sql`id, rev, content, clock, updated_by,
  ${iso(sql`created_at`)} as created_at, ${iso(sql`updated_at`)} as updated_at`

export function rowToSnapshot(r: TaskRow): TaskSnapshot {
  return toSnapshot(r.content, {
    id: r.id,
    rev: Number(r.rev),
    clock: r.clock,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    updatedBy: r.updated_by,
  })
}

/**
 * The task's latest snapshot, or null when the org has no such task. With `lock`
 * (inside a transaction) the row stays locked until it ends.
 */
export async function loadTask(database: Database, orgId: string, taskId: string, exec?: Executor, lock = false): Promise<TaskSnapshot | null> {
  const rows = await database.rows<TaskRow>(
    sql`select ${snapshotColumns} from tasks where org_id = ${orgId}::uuid and id = ${taskId}::uuid ${lock ? sql`for update` : sql``}`,
    exec,
  )
  return rows.length ? rowToSnapshot(rows[0]) : null
}

/** The latest snapshots of those of `taskIds` the org has, in one read (absent ids are left out). */
export async function loadTasks(database: Database, orgId: string, taskIds: string[]): Promise<TaskSnapshot[]> {
  if (taskIds.length === 0) return []
  const rows = await database.rows<TaskRow>(
    sql`select ${snapshotColumns} from tasks where org_id = ${orgId}::uuid and id = any(${`{${taskIds.join(',')}}`}::uuid[])`,
  )
  return rows.map(rowToSnapshot)
}

interface OpRow {
  rev: number
  op: TaskOp
  user_id: string
  device_id: string
  client_id: string | null
  seq: string | number | null
  at: string
}

/** Ops with rev ≥ fromRev in rev order, at most `limit`. */
export async function loadOps(
  database: Database,
  orgId: string,
  taskId: string,
  fromRev: number,
  limit: number,
  exec?: Executor,
): Promise<StoredOp[]> {
  const rows = await database.rows<OpRow>(sql`
    select rev, op, user_id, device_id, client_id, seq, ${iso(sql`committed_at`)} as at
    from task_ops where org_id = ${orgId}::uuid and task_id = ${taskId}::uuid and rev >= ${fromRev}::int
    order by rev limit ${limit}::int`, exec)
  return rows.map((r) => ({
    rev: Number(r.rev),
    op: r.op,
    userId: r.user_id,
    deviceId: r.device_id,
    clientId: r.client_id,
    seq: r.seq === null ? null : Number(r.seq),
    at: r.at,
  }))
}

/** A stored op as the `op` message subscribers get. */
export function toOpEvent(taskId: string, o: StoredOp): OpEvent {
  return { type: 'op', taskId, rev: o.rev, op: o.op, userId: o.userId, deviceId: o.deviceId, clientId: o.clientId, seq: o.seq, at: o.at }
}

/** True when the org has a project with this id (archived ones included). */
export async function projectExists(database: Database, orgId: string, projectId: string): Promise<boolean> {
  const rows = await database.rows(sql`select 1 from projects where org_id = ${orgId}::uuid and id = ${projectId}::uuid`)
  return rows.length > 0
}

/** The latest committed rev of each task that exists, in one query (the gateway's probe for lost publications). */
export async function latestRevs(database: Database, keys: { orgId: string; taskId: string }[]): Promise<{ orgId: string; taskId: string; rev: number }[]> {
  if (keys.length === 0) return []
  // Text array literals ({a,b}): ids are UUIDs checked by the message schemas, so no quoting is needed.
  const orgs = `{${keys.map((k) => k.orgId).join(',')}}`
  const ids = `{${keys.map((k) => k.taskId).join(',')}}`
  const rows = await database.rows<{ org_id: string; id: string; rev: number }>(sql`
    select t.org_id, t.id, t.rev from tasks t
    join unnest(${orgs}::uuid[], ${ids}::uuid[]) as k(org_id, id)
      on t.org_id = k.org_id and t.id = k.id`)
  return rows.map((r) => ({ orgId: r.org_id, taskId: r.id, rev: Number(r.rev) }))
}

export interface HistoryEntry {
  rev: number
  userId: string
  deviceId: string
  at: string
  changes: Record<string, { from: JsonValue; to: JsonValue }>
}

/**
 * History entries with rev ≥ fromRev, oldest first: on their op-log rows, or in
 * task_history (older entries and those of trimmed rows; never both for one rev).
 */
export async function loadHistory(database: Database, orgId: string, taskId: string, fromRev: number, limit: number): Promise<HistoryEntry[]> {
  const rows = await database.rows<{ rev: number; user_id: string; device_id: string; at: string; changes: HistoryEntry['changes'] }>(sql`
    select rev, user_id, device_id, ${iso(sql`at`)} as at, changes from (
      (select rev, user_id, device_id, committed_at as at, changes from task_ops
       where org_id = ${orgId}::uuid and task_id = ${taskId}::uuid and rev >= ${fromRev}::int and changes is not null
       order by rev limit ${limit}::int)
      union all
      (select rev, user_id, device_id, at, changes from task_history
       where org_id = ${orgId}::uuid and task_id = ${taskId}::uuid and rev >= ${fromRev}::int
       order by rev limit ${limit}::int)) h
    order by rev limit ${limit}::int`)
  return rows.map((r) => ({ rev: Number(r.rev), userId: r.user_id, deviceId: r.device_id, at: r.at, changes: r.changes }))
}

/** The filters of GET /api/tasks, with and without `q`. */
export interface TaskFilters {
  projectId?: string
  status?: string
  assigneeId?: string
  tag?: string
}

export interface TaskFilter extends TaskFilters {
  /** Only tasks whose id sorts after this one (the cursor). */
  afterId?: string
  limit: number
}

/** Conditions on `tasks` (unqualified columns) for the org's live tasks matching every given filter. */
export function filterConditions(orgId: string, f: TaskFilters): SQL[] {
  const where: SQL[] = [sql`org_id = ${orgId}::uuid`, sql`not deleted`]
  if (f.projectId !== undefined) where.push(sql`project_id = ${f.projectId}::uuid`)
  if (f.status !== undefined) where.push(sql`status = ${f.status}`)
  if (f.assigneeId !== undefined) where.push(sql`assignee_id = ${f.assigneeId}::uuid`)
  if (f.tag !== undefined) where.push(sql`content->'tags' ? ${f.tag}`)
  return where
}

/** Live (not deleted) tasks of the org matching every given filter, ordered by id. */
export async function listTasks(database: Database, orgId: string, f: TaskFilter): Promise<TaskSnapshot[]> {
  const where = filterConditions(orgId, f)
  if (f.afterId !== undefined) where.push(sql`id > ${f.afterId}::uuid`)
  const rows = await database.rows<TaskRow>(
    sql`select ${snapshotColumns} from tasks where ${sql.join(where, sql` and `)} order by id limit ${f.limit}::int`,
  )
  return rows.map(rowToSnapshot)
}
