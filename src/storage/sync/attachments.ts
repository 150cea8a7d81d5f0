/**
 * The attachments source of a pull (after tasks and comments): completed ones
 * changed since the cursor, deleted ones as tombstones. Uploads still open are
 * not news to anyone; attachments of a deleted task go with its tombstone.
 */
import { sql, type SQL } from 'drizzle-orm'
import type { Database, Executor } from '../db.js'
import { iso } from '../tasks.js'

export interface ChangedAttachmentRow {
  org_id: string
  id: string
  change_xid: string
  task_id: string
  name: string
  content_type: string
  size: string | number
  sha256: string
  chunk_size: number
  state: 'uploading' | 'ready' | 'deleted'
  upload_id: string | null
  thumbnail: string | null
  created_by: string
  created_at: string
  expires_at: string
}

/** `changed` filters alias `a` to the rows after the cursor's snapshot and position; `initial`: a pull without a cursor. */
export function changedAttachments(database: Database, tx: Executor, orgId: string, changed: SQL, initial: boolean, limit: number) {
  return database.rows<ChangedAttachmentRow>(
    sql`select a.org_id, a.id, a.change_xid::text as change_xid, a.task_id, a.name, a.content_type, a.size, a.sha256, a.chunk_size, a.state,
          a.upload_id, a.thumbnail, a.created_by, ${iso(sql`a.created_at`)} as created_at, ${iso(sql`a.expires_at`)} as expires_at
        from attachments a join tasks t on t.org_id = a.org_id and t.id = a.task_id and not t.deleted
        where a.org_id = ${orgId}::uuid and a.state <> 'uploading' and ${changed}
          ${initial ? sql`and a.state <> 'deleted'` : sql``}
        order by a.change_xid, a.id limit ${limit}::int`,
    tx,
  )
}
