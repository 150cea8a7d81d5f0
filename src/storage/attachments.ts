/**
 * Attachments, their stored chunks and each organization's storage use. The
 * quota is one row per organization: a reservation is a conditional UPDATE of it,
 * so two uploads racing for the last bytes (on any instances) serialize on the
 * row and only those that fit pass. Opening an upload inserts the attachment and
 * reserves its size in one transaction; deleting or expiring it releases the size
 * in the statement that changes the row, so the use never drifts from the rows.
 */
import { sql } from 'drizzle-orm'
import type { Database, Executor } from './db.js'
import type { Attachment } from '../protocol/messages.js'
import { iso } from './tasks.js'

export type AttachmentState = 'uploading' | 'ready' | 'deleted'

/** An attachment row: the wire shape plus what the server keeps to itself. */
export interface AttachmentRecord extends Attachment {
  orgId: string
  chunkSize: number
  state: AttachmentState
  uploadId: string | null
  thumbnailType: string | null
  expiresAt: string
}

export interface NewAttachment {
  orgId: string
  id: string
  taskId: string
  name: string
  contentType: string
  size: number
  sha256: string
  chunkSize: number
  uploadId: string | null
  createdBy: string
  expiresAt: string
}

export interface ChunkRecord {
  n: number
  size: number
  sha256: string
  etag: string | null
}

export interface StorageUse {
  usedBytes: number
  quotaBytes: number
}

/** An attachments row as the queries select it. */
export interface AttachmentRow {
  org_id: string
  id: string
  task_id: string
  name: string
  content_type: string
  size: string | number
  sha256: string
  chunk_size: number
  state: AttachmentState
  upload_id: string | null
  thumbnail: string | null
  created_by: string
  created_at: string
  expires_at: string
}

const select = sql`select org_id, id, task_id, name, content_type, size, sha256, chunk_size, state, upload_id, thumbnail, created_by,
  ${iso(sql`created_at`)} as created_at, ${iso(sql`expires_at`)} as expires_at`

export function toRecord(r: AttachmentRow): AttachmentRecord {
  return {
    orgId: r.org_id,
    id: r.id,
    taskId: r.task_id,
    name: r.name,
    contentType: r.content_type,
    size: Number(r.size),
    sha256: r.sha256,
    createdBy: r.created_by,
    createdAt: r.created_at,
    deleted: r.state === 'deleted',
    thumbnail: r.thumbnail !== null,
    chunkSize: Number(r.chunk_size),
    state: r.state,
    uploadId: r.upload_id,
    thumbnailType: r.thumbnail,
    expiresAt: r.expires_at,
  }
}

/** The wire shape of a record. */
export function toAttachment(r: AttachmentRecord): Attachment {
  const { id, taskId, name, contentType, size, sha256, createdBy, createdAt, deleted, thumbnail } = r
  return { id, taskId, name, contentType, size, sha256, createdBy, createdAt, deleted, thumbnail }
}

export class QuotaExceededError extends Error {
  constructor(readonly use: StorageUse, readonly wanted: number) {
    super(`the organization's storage quota is exceeded`)
    this.name = 'QuotaExceededError'
  }
}

export interface AttachmentRepository {
  load(orgId: string, id: string): Promise<AttachmentRecord | null>
  /** Ready attachments of a task, oldest first. */
  listReady(orgId: string, taskId: string): Promise<AttachmentRecord[]>
  /**
   * Inserts the upload and reserves its size; null when the id exists (nothing
   * reserved). Throws QuotaExceededError (nothing written) when it does not fit.
   */
  open(a: NewAttachment, defaultQuota: number): Promise<AttachmentRecord | null>
  chunks(orgId: string, id: string): Promise<ChunkRecord[]>
  chunk(orgId: string, id: string, n: number): Promise<ChunkRecord | null>
  /** Records a stored chunk; answers the chunk as recorded (an earlier record wins). */
  recordChunk(orgId: string, id: string, c: ChunkRecord): Promise<ChunkRecord>
  /** Forgets every chunk and sets a new store upload id (after a failed verification). */
  restart(orgId: string, id: string, uploadId: string | null): Promise<void>
  /** uploading → ready; null when it was not uploading. */
  markReady(orgId: string, id: string, thumbnailType: string | null, at: string): Promise<AttachmentRecord | null>
  /** → deleted, releasing its size and writing its tombstone; null when already deleted or missing. */
  markDeleted(orgId: string, id: string, at: string): Promise<AttachmentRecord | null>
  /** Uploads still open at `now` past their expiry. */
  expired(now: string, limit: number): Promise<AttachmentRecord[]>
  /** Attachments whose task is gone (purged past the tombstone horizon). */
  orphaned(limit: number): Promise<AttachmentRecord[]>
  /**
   * Removes the row and its chunks for good, releasing its size unless it was
   * deleted (already released); `onlyIf` guards against a concurrent change.
   */
  remove(orgId: string, id: string, onlyIf: 'expired' | 'orphaned', now: string): Promise<boolean>
  /** Adds an attachment event to the task's history (on the task's current rev). */
  recordHistory(e: { orgId: string; taskId: string; attachmentId: string; action: 'attached' | 'removed'; name: string; size: number; userId: string; deviceId: string }): Promise<void>
  storageUse(orgId: string, defaultQuota: number): Promise<StorageUse>
  setQuota(orgId: string, quotaBytes: number | null, defaultQuota: number): Promise<StorageUse>
}

export function attachmentRepository(database: Database): AttachmentRepository {
  const one = async (q: ReturnType<typeof sql>, exec?: Executor) => {
    const rows = await database.rows<AttachmentRow>(q, exec)
    return rows.length ? toRecord(rows[0]) : null
  }
  const use = async (orgId: string, defaultQuota: number, exec?: Executor): Promise<StorageUse> => {
    const [r] = await database.rows<{ used: string | number; quota: string | number }>(
      sql`select coalesce((select used_bytes from org_storage where org_id = ${orgId}::uuid), 0) as used,
        coalesce((select quota_bytes from org_storage where org_id = ${orgId}::uuid), ${defaultQuota}::bigint) as quota`,
      exec,
    )
    return { usedBytes: Number(r.used), quotaBytes: Number(r.quota) }
  }
  return {
    load: (orgId, id) => one(sql`${select} from attachments where org_id = ${orgId}::uuid and id = ${id}::uuid`),

    async listReady(orgId, taskId) {
      const rows = await database.rows<AttachmentRow>(
        sql`${select} from attachments where org_id = ${orgId}::uuid and task_id = ${taskId}::uuid and state = 'ready' order by created_at, id`,
      )
      return rows.map(toRecord)
    },

    open: (a, defaultQuota) =>
      database.db.transaction(async (tx) => {
        const inserted = await one(
          sql`insert into attachments (org_id, id, task_id, name, content_type, size, sha256, chunk_size, upload_id, created_by, expires_at)
            values (${a.orgId}::uuid, ${a.id}::uuid, ${a.taskId}::uuid, ${a.name}, ${a.contentType}, ${a.size}::bigint, ${a.sha256},
              ${a.chunkSize}::int, ${a.uploadId}, ${a.createdBy}::uuid, ${a.expiresAt}::timestamptz)
            on conflict (org_id, id) do nothing
            returning org_id, id, task_id, name, content_type, size, sha256, chunk_size, state, upload_id, thumbnail, created_by,
              ${iso(sql`created_at`)} as created_at, ${iso(sql`expires_at`)} as expires_at`,
          tx,
        )
        if (!inserted) return null
        await database.rows(sql`insert into org_storage (org_id) values (${a.orgId}::uuid) on conflict (org_id) do nothing`, tx)
        const reserved = await database.rows(
          sql`update org_storage set used_bytes = used_bytes + ${a.size}::bigint
            where org_id = ${a.orgId}::uuid and used_bytes + ${a.size}::bigint <= coalesce(quota_bytes, ${defaultQuota}::bigint)
            returning used_bytes`,
          tx,
        )
        if (reserved.length === 0) throw new QuotaExceededError(await use(a.orgId, defaultQuota, tx), a.size)
        return inserted
      }),

    async chunks(orgId, id) {
      const rows = await database.rows<ChunkRecord>(
        sql`select n, size, sha256, etag from attachment_chunks where org_id = ${orgId}::uuid and attachment_id = ${id}::uuid order by n`,
      )
      return rows.map((r) => ({ ...r, n: Number(r.n), size: Number(r.size) }))
    },

    async chunk(orgId, id, n) {
      const rows = await database.rows<ChunkRecord>(
        sql`select n, size, sha256, etag from attachment_chunks where org_id = ${orgId}::uuid and attachment_id = ${id}::uuid and n = ${n}::int`,
      )
      return rows.length ? { ...rows[0], n: Number(rows[0].n), size: Number(rows[0].size) } : null
    },

    async recordChunk(orgId, id, c) {
      await database.rows(
        sql`insert into attachment_chunks (org_id, attachment_id, n, size, sha256, etag)
          values (${orgId}::uuid, ${id}::uuid, ${c.n}::int, ${c.size}::int, ${c.sha256}, ${c.etag})
          on conflict (org_id, attachment_id, n) do nothing`,
      )
      return (await this.chunk(orgId, id, c.n))!
    },

    async restart(orgId, id, uploadId) {
      await database.db.transaction(async (tx) => {
        await database.rows(sql`delete from attachment_chunks where org_id = ${orgId}::uuid and attachment_id = ${id}::uuid`, tx)
        await database.rows(
          sql`update attachments set upload_id = ${uploadId}, updated_at = now() where org_id = ${orgId}::uuid and id = ${id}::uuid and state = 'uploading'`,
          tx,
        )
      })
    },

    markReady: (orgId, id, thumbnailType, at) =>
      one(
        sql`update attachments set state = 'ready', upload_id = null, thumbnail = ${thumbnailType}, completed_at = ${at}::timestamptz, updated_at = ${at}::timestamptz
          where org_id = ${orgId}::uuid and id = ${id}::uuid and state = 'uploading'
          returning org_id, id, task_id, name, content_type, size, sha256, chunk_size, state, upload_id, thumbnail, created_by,
            ${iso(sql`created_at`)} as created_at, ${iso(sql`expires_at`)} as expires_at`,
      ),

    markDeleted: (orgId, id, at) =>
      one(
        sql`with changed as (
            update attachments set state = 'deleted', updated_at = ${at}::timestamptz
            where org_id = ${orgId}::uuid and id = ${id}::uuid and state <> 'deleted'
            returning org_id, id, task_id, name, content_type, size, sha256, chunk_size, state, upload_id, thumbnail, created_by, created_at, expires_at),
          freed as (update org_storage s set used_bytes = greatest(0, s.used_bytes - c.size) from changed c where s.org_id = c.org_id),
          tomb as (insert into tombstones (org_id, kind, id, task_id, deleted_at)
            select org_id, 'attachment', id, task_id, ${at}::timestamptz from changed on conflict (org_id, kind, id) do nothing)
          select org_id, id, task_id, name, content_type, size, sha256, chunk_size, state, upload_id, thumbnail, created_by,
            ${iso(sql`created_at`)} as created_at, ${iso(sql`expires_at`)} as expires_at from changed`,
      ),

    async expired(now, limit) {
      const rows = await database.rows<AttachmentRow>(
        sql`${select} from attachments where state = 'uploading' and expires_at < ${now}::timestamptz order by expires_at limit ${limit}::int`,
      )
      return rows.map(toRecord)
    },

    async orphaned(limit) {
      const rows = await database.rows<AttachmentRow>(
        sql`${select} from attachments a where not exists (select 1 from tasks t where t.org_id = a.org_id and t.id = a.task_id) limit ${limit}::int`,
      )
      return rows.map(toRecord)
    },

    async remove(orgId, id, onlyIf, now) {
      const guard =
        onlyIf === 'expired'
          ? sql`a.state = 'uploading' and a.expires_at < ${now}::timestamptz`
          : sql`not exists (select 1 from tasks t where t.org_id = a.org_id and t.id = a.task_id)`
      const rows = await database.rows(
        sql`with gone as (
            delete from attachments a where a.org_id = ${orgId}::uuid and a.id = ${id}::uuid and ${guard} returning a.org_id, a.id, a.size, a.state),
          chunks as (delete from attachment_chunks c using gone g where c.org_id = g.org_id and c.attachment_id = g.id),
          tomb as (delete from tombstones b using gone g where b.org_id = g.org_id and b.kind = 'attachment' and b.id = g.id),
          freed as (update org_storage s set used_bytes = greatest(0, s.used_bytes - g.size) from gone g where s.org_id = g.org_id and g.state <> 'deleted')
          select id from gone`,
      )
      return rows.length > 0
    },

    async recordHistory(e) {
      await database.rows(
        sql`insert into attachment_history (org_id, task_id, rev, attachment_id, action, name, size, user_id, device_id)
          select ${e.orgId}::uuid, ${e.taskId}::uuid, t.rev, ${e.attachmentId}::uuid, ${e.action}, ${e.name}, ${e.size}::bigint, ${e.userId}::uuid, ${e.deviceId}::uuid
          from tasks t where t.org_id = ${e.orgId}::uuid and t.id = ${e.taskId}::uuid`,
      )
    },

    storageUse: (orgId, defaultQuota) => use(orgId, defaultQuota),

    async setQuota(orgId, quotaBytes, defaultQuota) {
      await database.rows(
        sql`insert into org_storage (org_id, quota_bytes) values (${orgId}::uuid, ${quotaBytes}::bigint)
          on conflict (org_id) do update set quota_bytes = excluded.quota_bytes`,
      )
      return use(orgId, defaultQuota)
    },
  }
}

/** An attachment event as a history entry lists it. */
export interface AttachmentHistoryEvent {
  attachmentId: string
  action: 'attached' | 'removed'
  name: string
  size: number
  userId: string
  deviceId: string
  at: string
}

/**
 * Adds to each history entry the attachment events that happened while the task
 * was at its rev (`attachments`, oldest first; absent when none): paging by rev
 * stays exact.
 */
export async function withAttachmentEvents<E extends { rev: number }>(
  database: Database,
  orgId: string,
  taskId: string,
  entries: E[],
): Promise<(E & { attachments?: AttachmentHistoryEvent[] })[]> {
  if (entries.length === 0) return entries
  const revs = entries.map((e) => e.rev)
  const rows = await database.rows<{ rev: number; attachment_id: string; action: 'attached' | 'removed'; name: string; size: string | number; user_id: string; device_id: string; at: string }>(
    sql`select rev, attachment_id, action, name, size, user_id, device_id, ${iso(sql`at`)} as at from attachment_history
      where org_id = ${orgId}::uuid and task_id = ${taskId}::uuid and rev between ${Math.min(...revs)}::int and ${Math.max(...revs)}::int
      order by rev, id`,
  )
  const byRev = new Map<number, AttachmentHistoryEvent[]>()
  for (const r of rows) {
    const list = byRev.get(Number(r.rev)) ?? []
    list.push({ attachmentId: r.attachment_id, action: r.action, name: r.name, size: Number(r.size), userId: r.user_id, deviceId: r.device_id, at: r.at })
    byRev.set(Number(r.rev), list)
  }
  return entries.map((e) => (byRev.has(e.rev) ? { ...e, attachments: byRev.get(e.rev) } : e))
}
