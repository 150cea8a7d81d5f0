/**
 * Pull: every change after a cursor, paginated. One page is one REPEATABLE READ
 * transaction; the snapshot of a catch-up's first page is its target T and the
 * cursor of its last page. Rows come in (change_xid, id) order per source (tasks,
 * then comments), each at its latest version. A row that changes between pages is
 * not lost: its new change_xid is not visible in T, so the next catch-up returns it.
 * A task's change_xid is in task_changes (written by the statement that changes the
 * row, so the two are always seen together), not on the task row.
 */
import { sql, type SQL } from 'drizzle-orm'
import type { Database, Executor } from '../db.js'
import { iso } from '../tasks.js'
import { toSnapshot } from '../../domain/snapshot.js'
import { toComment, type CommentRow } from '../comments.js'
import { changedAttachments, type ChangedAttachmentRow } from './attachments.js'
import { toAttachment, toRecord } from '../attachments.js'
import type { TaskContent, TaskSnapshot } from '../../domain/types.js'
import type { Attachment, Comment } from '../../protocol/messages.js'
import type { PullAnswer, Tombstone } from '../../protocol/sync.js'
import { decodeCursor, encodeCursor, type PullPosition } from './cursor.js'
import { isBeforeHorizon, readHorizon } from './horizon.js'
import { parseSnapshot, type PgSnapshot } from './snapshot.js'

export interface PullRequest {
  orgId: string
  deviceId: string
  cursor?: string
  limit: number
}

const RESET = { reset: true } as const
const START = (source: 0 | 1 | 2): PullPosition => ({ source, xid: '0', id: '00000000-0000-0000-0000-000000000000' })

/** Runs one page of a catch-up; `{reset: true}` for a cursor that is unknown, malformed or past the horizon. */
export async function pullChanges(database: Database, req: PullRequest): Promise<PullAnswer> {
  const cursor = req.cursor === undefined ? { since: null } : decodeCursor(req.cursor)
  if (!cursor) return RESET
  return database.db.transaction(
    async (tx) => {
      const { since, page } = cursor
      const from = page?.position ?? START(0)
      // Sent together (one round trip while the transaction holds its connection): the
      // snapshot, the horizon, and the first source's rows, which depend on the cursor only.
      const [[row], horizon, first] = await Promise.all([
        database.rows<{ snap: string }>(sql`select pg_current_snapshot()::text as snap`, tx),
        since ? readHorizon(database, tx) : null,
        readSource(database, tx, req, since, from, from.source, req.limit + 1),
      ])
      const now = parseSnapshot(row.snap)!
      // A snapshot from the future was not issued by this database.
      if (since && (since.xmax > now.xmax || isBeforeHorizon(since, horizon))) return RESET
      if (page && page.target.xmax > now.xmax) return RESET
      const target = page?.target ?? now
      const [out, lastSeq] = await Promise.all([
        readPage(database, tx, req, since, from, first),
        lastSeqAt(database, tx, req.orgId, req.deviceId, target),
      ])
      const next = out.more ? encodeCursor({ since, page: { target, position: out.more } }) : encodeCursor({ since: target })
      return { tasks: out.tasks, comments: out.comments, attachments: out.attachments, tombstones: out.tombstones, cursor: next, hasMore: out.more !== null, lastSeq }
    },
    { isolationLevel: 'repeatable read', accessMode: 'read only' },
  )
}

interface PageContent {
  tasks: TaskSnapshot[]
  comments: Comment[]
  attachments: Attachment[]
  tombstones: Tombstone[]
  /** Where the next page starts; null when this page ends the catch-up. */
  more: PullPosition | null
}

type SourceRow = TaskRow | ChangedCommentRow | ChangedAttachmentRow

/** One source's rows after the position (its start when the page begins in an earlier source), at most `limit`. */
function readSource(database: Database, tx: Executor, req: PullRequest, since: PgSnapshot | null, from: PullPosition, source: 0 | 1 | 2, limit: number): Promise<SourceRow[]> {
  const after = source === from.source ? from : START(source)
  if (source === 0) return changedTasks(database, tx, req.orgId, since, after, limit)
  if (source === 1) return changedComments(database, tx, req.orgId, since, after, limit)
  return changedAttachments(database, tx, req.orgId, sql`${changedAfter(since, sql`a`)} and ${afterPosition(after, sql`a`)}`, !since, limit)
}

/**
 * The page: the rows of `from.source` (read already: `first`), then of the sources after
 * it while the page has room. Those later sources are read together, each with the room
 * left after the first (the last one may read rows the page then leaves out).
 */
async function readPage(database: Database, tx: Executor, req: PullRequest, since: PgSnapshot | null, from: PullPosition, first: SourceRow[]): Promise<PageContent> {
  const out: PageContent = { tasks: [], comments: [], attachments: [], tombstones: [], more: null }
  let remaining = req.limit
  const later = first.length > remaining ? [] : ([1, 2] as const).filter((s) => s > from.source)
  const read = await Promise.all(later.map((s) => readSource(database, tx, req, since, from, s, remaining - first.length + 1)))
  const bySource = new Map<number, SourceRow[]>([[from.source, first], ...later.map((s, i) => [s, read[i]] as [number, SourceRow[]])])
  for (const source of [0, 1, 2] as const) {
    if (source < from.source) continue
    const after = source === from.source ? from : START(source)
    // One row more than fits tells whether this source goes on.
    const rows = bySource.get(source) ?? []
    const fits = rows.slice(0, remaining)
    for (const r of fits) {
      if (source === 0) addTask(out, r as TaskRow)
      else if (source === 1) addComment(out, r as ChangedCommentRow)
      else addAttachment(out, r as ChangedAttachmentRow)
    }
    remaining -= fits.length
    if (rows.length > fits.length) {
      const last = fits.at(-1)
      out.more = last ? { source, xid: last.change_xid, id: last.id } : after
      return out
    }
  }
  return out
}

function addAttachment(out: PageContent, r: ChangedAttachmentRow): void {
  if (r.state === 'deleted') {
    out.tombstones.push({ kind: 'attachment', id: r.id, taskId: r.task_id })
    return
  }
  out.attachments.push(toAttachment(toRecord(r)))
}

/** Rows written by a transaction `since` cannot see; the index bound is xmin. */
function changedAfter(since: PgSnapshot | null, alias: SQL): SQL {
  if (!since) return sql`true`
  return sql`${alias}.change_xid >= pg_snapshot_xmin(${since.text}::pg_snapshot)
    and not pg_visible_in_snapshot(${alias}.change_xid, ${since.text}::pg_snapshot)`
}

const afterPosition = (p: PullPosition, alias: SQL, id = sql`id`): SQL => sql`(${alias}.change_xid, ${alias}.${id}) > (${p.xid}::xid8, ${p.id}::uuid)`

interface TaskRow {
  id: string
  change_xid: string
  rev: number
  content: TaskContent
  clock: Record<string, number>
  deleted: boolean
  created_at: string
  updated_at: string
  updated_by: string
}

function changedTasks(database: Database, tx: Executor, orgId: string, since: PgSnapshot | null, after: PullPosition, limit: number) {
  const x = sql`x`
  // Without a cursor the answer is the whole live state: deletions are only news to a device that had the task.
  return database.rows<TaskRow>(
    sql`select t.id, x.change_xid::text as change_xid, t.rev, t.content, t.clock, t.deleted, t.updated_by,
          ${iso(sql`t.created_at`)} as created_at, ${iso(sql`t.updated_at`)} as updated_at
        from task_changes x join tasks t on t.org_id = x.org_id and t.id = x.task_id
        where x.org_id = ${orgId}::uuid and ${changedAfter(since, x)} and ${afterPosition(after, x, sql`task_id`)}
          ${since ? sql`` : sql`and not t.deleted`}
        order by x.change_xid, x.task_id limit ${limit}::int`,
    tx,
  )
}

function addTask(out: PageContent, r: TaskRow): void {
  if (r.deleted) {
    out.tombstones.push({ kind: 'task', id: r.id, rev: Number(r.rev) })
    return
  }
  const meta = { id: r.id, rev: Number(r.rev), clock: r.clock, createdAt: r.created_at, updatedAt: r.updated_at, updatedBy: r.updated_by }
  out.tasks.push(toSnapshot(r.content, meta))
}

interface ChangedCommentRow extends CommentRow {
  change_xid: string
}

function changedComments(database: Database, tx: Executor, orgId: string, since: PgSnapshot | null, after: PullPosition, limit: number) {
  const c = sql`c`
  // Comments of a deleted task go with its tombstone.
  return database.rows<ChangedCommentRow>(
    sql`select c.id, c.change_xid::text as change_xid, c.task_id, c.parent_id, c.author_id, c.body, c.edit_count, c.deleted,
          ${iso(sql`c.created_at`)} as created_at, case when c.edited_at is null then null else ${iso(sql`c.edited_at`)} end as edited_at
        from comments c join tasks t on t.org_id = c.org_id and t.id = c.task_id and not t.deleted
        where c.org_id = ${orgId}::uuid and ${changedAfter(since, c)} and ${afterPosition(after, c)}
          ${since ? sql`` : sql`and not c.deleted`}
        order by c.change_xid, c.id limit ${limit}::int`,
    tx,
  )
}

function addComment(out: PageContent, r: ChangedCommentRow): void {
  if (r.deleted) {
    out.tombstones.push({ kind: 'comment', id: r.id, taskId: r.task_id })
    return
  }
  out.comments.push(toComment(r))
}

/**
 * Highest seq of each clientId bound to the device among the mutations the
 * target snapshot can see (0 when none): op-log rows and client_mutations, so lastSeq never acknowledges a change
 * the pages lack.
 */
async function lastSeqAt(database: Database, tx: Executor, orgId: string, deviceId: string, target: PgSnapshot): Promise<Record<string, number>> {
  const rows = await database.rows<{ client_id: string; seq: string | number }>(
    sql`select c.client_id, greatest(coalesce(m.seq, 0), coalesce(o.seq, 0)) as seq from clients c
        left join lateral (
          select seq from client_mutations m
          where m.org_id = c.org_id and m.client_id = c.client_id and pg_visible_in_snapshot(m.change_xid, ${target.text}::pg_snapshot)
          order by seq desc limit 1) m on true
        left join lateral (
          select seq from task_ops o
          where o.org_id = c.org_id and o.client_id = c.client_id and pg_visible_in_snapshot(o.change_xid, ${target.text}::pg_snapshot)
          order by seq desc limit 1) o on true
        where c.org_id = ${orgId}::uuid and c.device_id = ${deviceId}::uuid`,
    tx,
  )
  return Object.fromEntries(rows.map((r) => [r.client_id, Number(r.seq)]))
}
