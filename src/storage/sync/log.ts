/**
 * The sync log: one row per push, pull and socket resume, so an admin can see
 * which device caught up when, with how much, and how long it took.
 */
import { sql } from 'drizzle-orm'
import type { Database } from '../db.js'
import { iso } from '../tasks.js'

export interface SyncLogEntry {
  orgId: string
  userId: string
  deviceId: string
  clientId?: string | null
  kind: 'push' | 'pull' | 'resume'
  /** What was moved: e.g. {tasks, comments, tombstones} for a pull, {applied, duplicate, rejected} for a push. */
  counts: Record<string, number>
  durationMs: number
}

export interface SyncLogItem extends Required<Omit<SyncLogEntry, 'orgId'>> {
  id: number
  at: string
}

/** Records one sync; callers should not fail a sync because its log line could not be written. */
export function recordSync(database: Database, e: SyncLogEntry): Promise<void> {
  return recordSyncs(database, [e])
}

export interface SyncLogQuery {
  deviceId?: string
  userId?: string
  kind?: SyncLogEntry['kind']
  /** Only entries older than this id (the page cursor): newest first. */
  beforeId?: number
  limit: number
}

/** The organization's sync log, newest first. */
export async function listSyncLog(database: Database, orgId: string, q: SyncLogQuery): Promise<SyncLogItem[]> {
  const rows = await database.rows<{
    id: string | number
    user_id: string
    device_id: string
    client_id: string | null
    kind: SyncLogEntry['kind']
    counts: Record<string, number>
    duration_ms: number
    at: string
  }>(sql`
    select id, user_id, device_id, client_id, kind, counts, duration_ms, ${iso(sql`at`)} as at from sync_log
    where org_id = ${orgId}::uuid
      ${q.deviceId ? sql`and device_id = ${q.deviceId}::uuid` : sql``}
      ${q.userId ? sql`and user_id = ${q.userId}::uuid` : sql``}
      ${q.kind ? sql`and kind = ${q.kind}` : sql``}
      ${q.beforeId !== undefined ? sql`and id < ${q.beforeId}::bigint` : sql``}
    order by id desc limit ${q.limit}::int`)
  return rows.map((r) => ({
    id: Number(r.id),
    userId: r.user_id,
    deviceId: r.device_id,
    clientId: r.client_id,
    kind: r.kind,
    counts: r.counts,
    durationMs: Number(r.duration_ms),
    at: r.at,
  }))
}

/** Records several syncs in one statement (socket resumes arriving together). */
export async function recordSyncs(database: Database, entries: SyncLogEntry[]): Promise<void> {
  if (!entries.length) return
  const rows = entries.map(
    (e) => sql`(${e.orgId}::uuid, ${e.userId}::uuid, ${e.deviceId}::uuid, ${e.clientId ?? null}::uuid, ${e.kind},
      ${JSON.stringify(e.counts)}::jsonb, ${Math.max(0, Math.round(e.durationMs))}::int)`,
  )
  await database.rows(sql`
    insert into sync_log (org_id, user_id, device_id, client_id, kind, counts, duration_ms)
    values ${sql.join(rows, sql`, `)}`)
}
