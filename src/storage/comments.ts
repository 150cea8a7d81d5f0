/**
 * Comments of tasks. Each mutation is one statement that also writes its
 * (clientId, seq) record and, for a delete, the comment's tombstone, so it is
 * atomic and a resend finds the record instead of applying twice.
 */
import { sql, type SQL } from 'drizzle-orm'
import type { Database } from './db.js'
import type { Comment } from '../protocol/messages.js'
import { iso } from './tasks.js'
import type { MutationKey, NewComment } from './task-store.js'

/** A comments row as selected with snake_case names and ISO times. */
export interface CommentRow {
  id: string
  task_id: string
  parent_id: string | null
  author_id: string
  body: string
  created_at: string
  edited_at: string | null
  edit_count: number
  deleted: boolean
}

const columns = (p: string) => sql.raw(`${p}id, ${p}task_id, ${p}parent_id, ${p}author_id, ${p}body, ${p}edit_count, ${p}deleted`)
const times = (p: string) =>
  sql`${iso(sql.raw(`${p}created_at`))} as created_at, ${iso(sql.raw(`${p}edited_at`))} as edited_at`

export function toComment(r: CommentRow): Comment {
  return {
    id: r.id,
    taskId: r.task_id,
    parentId: r.parent_id,
    authorId: r.author_id,
    body: r.body,
    createdAt: r.created_at,
    editedAt: r.edited_at,
    editCount: Number(r.edit_count),
    deleted: r.deleted,
  }
}

export async function loadComment(database: Database, orgId: string, id: string): Promise<Comment | null> {
  const rows = await database.rows<CommentRow>(
    sql`select ${columns('')}, ${times('')} from comments where org_id = ${orgId}::uuid and id = ${id}::uuid`,
  )
  return rows.length ? toComment(rows[0]) : null
}

/** Comments of a task, oldest first (tombstones included: replies keep their thread), after the cursor. */
export async function listComments(
  database: Database,
  orgId: string,
  taskId: string,
  after: { createdAt: string; id: string } | undefined,
  limit: number,
): Promise<Comment[]> {
  const cursor = after ? sql`and (created_at, id) > (${after.createdAt}::timestamptz, ${after.id}::uuid)` : sql``
  const rows = await database.rows<CommentRow>(sql`
    select ${columns('')}, ${times('')} from comments
    where org_id = ${orgId}::uuid and task_id = ${taskId}::uuid ${cursor}
    order by created_at, id limit ${limit}::int`)
  return rows.map(toComment)
}


// Writes the client_mutations record when the change `changed` (a CTE returning
// org_id, id, task_id) wrote a row; a racing resend hits the primary key instead.
const recordSql = (m: MutationKey) =>
  m.clientId === null
    ? sql``
    : sql`, rec as (
        insert into client_mutations (client_id, seq, org_id, kind, task_id, comment_id, digest)
        select ${m.clientId}::uuid, ${m.seq}::bigint, org_id, 'comment', task_id, id, ${m.digest}::text from changed)`

// The outbox row of the change, in the same statement (see tasks-commit.ts).
const eventSql = (type: string, m: MutationKey) => sql`, ev as (
    insert into events (org_id, type, task_id, actor_id, at, change)
    select org_id, ${type}, task_id, coalesce(${m.actorId ?? null}::uuid, author_id), updated_at,
      jsonb_build_object('comment', jsonb_build_object('id', id, 'parentId', parent_id, 'authorId', author_id,
        'body', body, 'editCount', edit_count, 'deleted', deleted)) from changed)`

async function mutate(database: Database, type: string, change: SQL, m: MutationKey, more: SQL = sql``): Promise<Comment | null> {
  const rows = await database.rows<CommentRow>(sql`
    with changed as (${change}) ${recordSql(m)} ${eventSql(type, m)} ${more}
    select ${columns('')}, ${times('')} from changed`)
  return rows.length ? toComment(rows[0]) : null
}

const returning = sql`returning org_id, id, task_id, parent_id, author_id, body, created_at, edited_at, edit_count, deleted, updated_at`

/** Inserts a comment; null when the org already has one with this id. */
export function insertComment(
  database: Database,
  c: NewComment,
  m: MutationKey,
): Promise<Comment | null> {
  return mutate(
    database,
    'comment.created',
    sql`insert into comments (org_id, id, task_id, parent_id, author_id, body, created_at, updated_at)
      values (${c.orgId}::uuid, ${c.id}::uuid, ${c.taskId}::uuid, ${c.parentId}::uuid, ${c.authorId}::uuid, ${c.body},
        ${c.at}::timestamptz, ${c.at}::timestamptz)
      on conflict (org_id, id) do nothing ${returning}`,
    m,
  )
}

/** Replaces the body of a live comment; null when it is missing or deleted. */
export function editComment(database: Database, orgId: string, id: string, body: string, at: string, m: MutationKey): Promise<Comment | null> {
  return mutate(
    database,
    'comment.edited',
    sql`update comments set body = ${body}, edited_at = ${at}::timestamptz, edit_count = edit_count + 1, updated_at = ${at}::timestamptz
      where org_id = ${orgId}::uuid and id = ${id}::uuid and not deleted ${returning}`,
    m,
  )
}

/** Turns a live comment into its tombstone (body cleared) and records the deletion; null when missing or deleted. */
export function deleteComment(database: Database, orgId: string, id: string, at: string, m: MutationKey): Promise<Comment | null> {
  return mutate(
    database,
    'comment.deleted',
    sql`update comments set body = '', deleted = true, updated_at = ${at}::timestamptz
      where org_id = ${orgId}::uuid and id = ${id}::uuid and not deleted ${returning}`,
    m,
    sql`, tomb as (
      insert into tombstones (org_id, kind, id, task_id, deleted_at)
      select org_id, 'comment', id, task_id, ${at}::timestamptz from changed
      on conflict (org_id, kind, id) do nothing)`,
  )
}
