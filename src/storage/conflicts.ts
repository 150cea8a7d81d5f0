/**
 * The conflict queue as stored: what the sequencer recorded for a person to settle,
 * listed oldest first, claimed by the one who settles it (one statement, so two
 * people cannot both), and marked with the rev of the resolution op.
 */
import { sql } from 'drizzle-orm'
import type { Database } from './db.js'
import { TaskSyncError } from '../protocol/errors.js'
import type { JsonValue } from '../domain/types.js'

export type ConflictStatus = 'open' | 'resolved'

/** How a conflict was settled: the value committed and, when picked that way, which side. */
export interface Resolution {
  value: JsonValue
  choose?: 'committed' | 'incoming'
}

export interface Conflict {
  id: string
  taskId: string
  field: 'status' | 'assigneeId'
  committedValue: JsonValue
  incomingValue: JsonValue
  committedRev: number
  incomingRev: number
  incomingUserId: string
  status: ConflictStatus
  resolution: Resolution | null
  resolvedBy: string | null
  resolvedAt: string | null
  /** The rev of the resolution op. */
  resolvedRev: number | null
  createdAt: string
}

interface ConflictRow {
  id: string
  task_id: string
  field: Conflict['field']
  committed_value: JsonValue
  incoming_value: JsonValue
  committed_rev: number
  incoming_rev: number
  incoming_user_id: string
  status: ConflictStatus
  resolution: Resolution | null
  resolved_by: string | null
  resolved_at: string | null
  resolved_rev: number | null
  created_at: string
  /** Exact created_at (microseconds) for the page cursor. */
  created_key: string
}

const utc = (col: string, frac: 'MS' | 'US') => sql.raw(`to_char(${col} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.${frac}"Z"')`)
const columns = sql`c.id, c.task_id, c.field, c.committed_value, c.incoming_value, c.committed_rev, c.incoming_rev,
  c.incoming_user_id, c.status, c.resolution, c.resolved_by, c.resolved_rev,
  ${utc('c.resolved_at', 'MS')} as resolved_at, ${utc('c.created_at', 'MS')} as created_at, ${utc('c.created_at', 'US')} as created_key`

function toConflict(r: ConflictRow): Conflict {
  return {
    id: r.id,
    taskId: r.task_id,
    field: r.field,
    committedValue: r.committed_value,
    incomingValue: r.incoming_value,
    committedRev: Number(r.committed_rev),
    incomingRev: Number(r.incoming_rev),
    incomingUserId: r.incoming_user_id,
    status: r.status,
    resolution: r.resolution,
    resolvedBy: r.resolved_by,
    resolvedAt: r.resolved_at,
    resolvedRev: r.resolved_rev === null ? null : Number(r.resolved_rev),
    createdAt: r.created_at,
  }
}

export interface ConflictQuery {
  /** `open` (default) lists the queue: open conflicts of tasks that still exist and are not deleted. */
  status: ConflictStatus | 'all'
  taskId?: string
  cursor?: string
  limit: number
}

/** Conflicts oldest first, `{items, nextCursor}`. */
export async function listConflicts(database: Database, orgId: string, q: ConflictQuery): Promise<{ items: Conflict[]; nextCursor: string | null }> {
  const after = q.cursor === undefined ? null : decodePageCursor(q.cursor)
  const rows = await database.rows<ConflictRow>(sql`
    select ${columns} from conflicts c
    ${q.status === 'open' ? sql`join tasks t on t.org_id = c.org_id and t.id = c.task_id and not t.deleted` : sql``}
    where c.org_id = ${orgId}::uuid
      ${q.status === 'all' ? sql`` : sql`and c.status = ${q.status}`}
      ${q.taskId ? sql`and c.task_id = ${q.taskId}::uuid` : sql``}
      ${after ? sql`and (c.created_at, c.id) > (${after[0]}::timestamptz, ${after[1]}::uuid)` : sql``}
    order by c.created_at, c.id limit ${q.limit + 1}::int`)
  const page = rows.slice(0, q.limit)
  const last = page.at(-1)
  const nextCursor = rows.length > q.limit && last ? Buffer.from(JSON.stringify([last.created_key, last.id])).toString('base64url') : null
  return { items: page.map(toConflict), nextCursor }
}

function decodePageCursor(text: string): [string, string] {
  try {
    const v = JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) as unknown
    if (Array.isArray(v) && v.length === 2 && typeof v[0] === 'string' && typeof v[1] === 'string'
      && /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/.test(v[0]) && /^[0-9a-f-]{36}$/.test(v[1])) return [v[0], v[1]]
  } catch {
    // fall through
  }
  throw new TaskSyncError('bad_request', 'cursor is not one this server issued')
}

export async function loadConflict(database: Database, orgId: string, id: string): Promise<Conflict | null> {
  const rows = await database.rows<ConflictRow>(sql`select ${columns} from conflicts c where c.org_id = ${orgId}::uuid and c.id = ${id}::uuid`)
  return rows.length ? toConflict(rows[0]) : null
}

/** Marks an open conflict resolved by `userId`; false when it was not open (someone settled it first). */
export async function claimConflict(database: Database, orgId: string, id: string, userId: string, resolution: Resolution): Promise<boolean> {
  const claimed = await database.rows(sql`
    update conflicts set status = 'resolved', resolution = ${JSON.stringify(resolution)}::jsonb,
      resolved_by = ${userId}::uuid, resolved_at = now()
    where org_id = ${orgId}::uuid and id = ${id}::uuid and status = 'open' returning id`)
  return claimed.length > 0
}

/** Reopens a claimed conflict whose resolution op was not committed. */
export async function reopenConflict(database: Database, orgId: string, id: string): Promise<void> {
  await database.rows(sql`
    update conflicts set status = 'open', resolution = null, resolved_by = null, resolved_at = null
    where org_id = ${orgId}::uuid and id = ${id}::uuid and resolved_rev is null`)
}

/** Records the rev of the op that settled the conflict. */
export async function setResolvedRev(database: Database, orgId: string, id: string, rev: number): Promise<void> {
  // conflict.resolved goes out with the rev, in the same statement (the outbox).
  await database.rows(sql`
    with r as (
      update conflicts set resolved_rev = ${rev}::int where org_id = ${orgId}::uuid and id = ${id}::uuid and resolved_rev is null
      returning org_id, id, task_id, field, resolution, resolved_by, resolved_rev)
    insert into events (org_id, type, task_id, rev, actor_id, change)
    select org_id, 'conflict.resolved', task_id, resolved_rev, resolved_by,
      jsonb_build_object('conflict', jsonb_build_object('id', id, 'field', field, 'resolution', resolution)) from r`)
}
