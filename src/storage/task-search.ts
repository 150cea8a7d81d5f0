/**
 * Full-text search of an organization's tasks: the generated `search` tsvector
 * (title A, tags B, description C; GIN index), queried with
 * websearch_to_tsquery in the org's language, ranked with ts_rank, with a
 * highlighted snippet per hit. The same SQL runs on PostgreSQL and PGlite.
 */
import { sql, type SQL } from 'drizzle-orm'
import type { Database } from './db.js'
import type { TaskContent, TaskSnapshot } from '../domain/types.js'
import { iso } from './tasks.js'
import { toSnapshot } from '../domain/snapshot.js'

export interface TaskSearch {
  q: string
  projectId?: string
  status?: string
  assigneeId?: string
  tag?: string
  /** Only hits after this one in rank order (the cursor: the rank as text, then the id). */
  after?: { rank: string; id: string }
  limit: number
}

export interface TaskHit {
  task: TaskSnapshot
  /** ts_rank as text (exact, for the cursor). */
  rank: string
  /** Title and description around the matches, HTML-escaped, matches in <mark>…</mark>. */
  snippet: string
}

/** `x` HTML-escaped in SQL, so the only markup of a snippet is ts_headline's <mark>. */
const escaped = (x: SQL) => sql`replace(replace(replace(${x}, '&', '&amp;'), '<', '&lt;'), '>', '&gt;')`
const HEADLINE_OPTIONS = 'StartSel=<mark>, StopSel=</mark>, MaxWords=24, MinWords=8, MaxFragments=2, FragmentDelimiter=" … "'

/** Live tasks of the org matching `s.q` and every other filter, best rank first, then by id. */
export async function searchTasks(database: Database, orgId: string, s: TaskSearch): Promise<TaskHit[]> {
  const where: SQL[] = [sql`t.org_id = ${orgId}::uuid`, sql`not t.deleted`, sql`t.search @@ query.q`]
  if (s.projectId !== undefined) where.push(sql`t.project_id = ${s.projectId}::uuid`)
  if (s.status !== undefined) where.push(sql`t.status = ${s.status}`)
  if (s.assigneeId !== undefined) where.push(sql`t.assignee_id = ${s.assigneeId}::uuid`)
  if (s.tag !== undefined) where.push(sql`t.content->'tags' ? ${s.tag}`)
  const after = s.after ? sql`where (hit.rank < ${s.after.rank}::real or (hit.rank = ${s.after.rank}::real and hit.id > ${s.after.id}::uuid))` : sql``
  // The headline is computed for the page only (the inner query is limited first).
  const rows = await database.rows<{
    id: string
    rev: number
    content: TaskContent
    clock: Record<string, number>
    created_at: string
    updated_at: string
    updated_by: string
    rank: string
    snippet: string
  }>(sql`
    with query as (
      select o.search_language::regconfig as lang, websearch_to_tsquery(o.search_language::regconfig, ${s.q}) as q
      from organizations o where o.id = ${orgId}::uuid
    ), hit as (
      select t.id, t.rev, t.content, t.clock, t.updated_by, t.created_at, t.updated_at, ts_rank(t.search, query.q) as rank
      from tasks t, query where ${sql.join(where, sql` and `)}
    ), page as (
      select * from hit ${after} order by hit.rank desc, hit.id limit ${s.limit}::int
    )
    select page.id, page.rev, page.content, page.clock, page.updated_by,
      ${iso(sql`page.created_at`)} as created_at, ${iso(sql`page.updated_at`)} as updated_at, page.rank::text as rank,
      ts_headline(query.lang, ${escaped(sql`(page.content->>'title') || E'\n' || (page.content->>'description')`)}, query.q, ${HEADLINE_OPTIONS}) as snippet
    from page, query order by page.rank desc, page.id`)
  return rows.map((r) => ({
    task: toSnapshot(r.content, { id: r.id, rev: Number(r.rev), clock: r.clock, createdAt: r.created_at, updatedAt: r.updated_at, updatedBy: r.updated_by }),
    rank: r.rank,
    snippet: r.snippet,
  }))
}
