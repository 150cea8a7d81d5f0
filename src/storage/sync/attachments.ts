/**
 * The attachments source of a pull (after tasks and comments): completed ones
 * changed since the cursor, deleted ones as tombstones. Uploads still open are
 * not news to anyone; attachments of a deleted task go with its tombstone.
 */
import { sql, type SQL } from 'drizzle-orm'
import type { Database, Executor } from '../db.js'
import { iso } from '../tasks.js'
import type { AttachmentRow } from '../attachments.js'

export type ChangedAttachmentRow = AttachmentRow & { change_xid: string }

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
