/**
 * Full-text search of an organization's tasks: the `search` tsvector
 * (title A, tags B, description C; GIN index), queried with
 * websearch_to_tsquery in the org's language, ranked with ts_rank, with a
 * highlighted snippet per hit. The same SQL runs on PostgreSQL and PGlite.
 *
 * Hits come in two tiers: first those the query matches on title and tags alone
 * (`search_head`, its own small GIN index), then the others; by ts_rank within a
 * tier. For a one-word query that is exactly ts_rank's order (a title or tag hit
 * ranks ≥ 0.24, a description-only hit ≤ 0.2). It is what makes a
 * broad query cheap: a page inside the head tier ranks the head hits only (a
 * sixth of the matches), never the whole match set (docs/protocol.md, search).
 *
 * The stored vectors are those of the last re-index (search-index.ts): a row whose
 * content changed since (in `task_search_stale`: a few rows) is matched and ranked on
 * vectors computed from its content, so a search sees every committed change at once.
 */
import { sql, type SQL } from 'drizzle-orm'
import type { Database } from './db.js'
import type { TaskSnapshot } from '../domain/types.js'
import { filterConditions, rowToSnapshot, snapshotColumns, type TaskFilters, type TaskRow } from './tasks.js'
import { searchHeadVector, searchVector } from './search-index.js'

/** 1: the query matches title and tags alone; 2: it needs the description. */
export type SearchTier = 1 | 2

/** Where a hit sorts: tier, then rank (descending), then id. */
export interface SearchKey {
  tier: SearchTier
  /** ts_rank as PostgreSQL prints the real (exact, so the cursor compares equal). */
  rank: string
  id: string
}

export interface TaskSearch extends TaskFilters {
  q: string
  /** Only hits after this one in search order (the cursor). */
  after?: SearchKey
  limit: number
}

export interface TaskHit extends SearchKey {
  task: TaskSnapshot
  /** Title and description around the matches, HTML-escaped, matches in <mark>…</mark>. */
  snippet: string
}

/** `x` HTML-escaped in SQL, so the only markup of a snippet is ts_headline's <mark>. */
const escaped = (x: SQL) => sql`replace(replace(replace(${x}, '&', '&amp;'), '<', '&lt;'), '>', '&gt;')`
const HEADLINE_OPTIONS = 'StartSel=<mark>, StopSel=</mark>, MaxWords=24, MinWords=8, MaxFragments=2, FragmentDelimiter=" … "'

/**
 * Hits of one tier after `after`, best first, at most `limit`: only (id, tier, rank), the page is joined
 * later. `from` is the rows the tier's match is checked on, each with its full vector as `doc`.
 */
function tierPage(tier: SearchTier, from: SQL, match: SQL, where: SQL[], s: TaskSearch): SQL {
  const after = s.after
  if (after && after.tier > tier) return sql`select null::uuid as id, ${tier}::int as tier, null::real as rank where false`
  const seek = after?.tier === tier ? sql`where rank < ${after.rank}::real or (rank = ${after.rank}::real and id > ${after.id}::uuid)` : sql``
  return sql`select id, ${tier}::int as tier, rank from (
      select id, ts_rank(doc, q) as rank from ${from} where ${sql.join([...where, match], sql` and `)}
    ) ranked ${seek} order by rank desc, id limit ${s.limit}::int`
}

/** Live tasks of the org matching `s.q` and every other filter, in search order (tier, rank, id). */
export async function searchTasks(database: Database, orgId: string, s: TaskSearch): Promise<TaskHit[]> {
  const where = filterConditions(orgId, s)
  // Each tier's rows come from the stored vectors of fresh rows and from vectors computed for the
  // org's stale ones (their stored vectors may match words no longer there: they are never used).
  const t = sql`t`
  // The org's stale rows (their set's primary key), and whether a row is one of them.
  const staleRows = sql`task_search_stale s join tasks t on t.org_id = s.org_id and t.id = s.task_id`
  const stale = sql`s.org_id = ${orgId}::uuid`
  const fresh = sql`not exists (select 1 from task_search_stale s where s.org_id = t.org_id and s.task_id = t.id)`
  // Head tier: the rows of the small head index, then the filters and the full vector checked on them. The
  // fence (offset 0) keeps the planner from ANDing in bitmaps of the big index or of a filter's index (a
  // status is a quarter of the org): it cannot estimate a tsquery of a CTE and takes every match as rare.
  const headRows = sql`(
      select t.*, query.q, t.search as doc from tasks t, query where t.search_head @@ query.q and ${fresh}
      union all
      select t.*, query.q, ${searchVector(t)} as doc from ${staleRows}, query where ${stale} and ${searchHeadVector(t)} @@ query.q
      offset 0) as head_rows`
  const head = tierPage(1, headRows, sql`doc @@ q`, where, s)
  // The rest is ranked only when the head tier does not fill the page (an InitPlan: a one-time filter).
  const ranked = sql`(select count(*) from head) < ${s.limit}::int`
  const restRows = sql`(
      select t.*, query.q, t.search as doc from tasks t, query
      where ${ranked} and t.search @@ query.q and not (t.search_head @@ query.q) and ${fresh}
      union all
      select t.*, query.q, ${searchVector(t)} as doc from ${staleRows}, query
      where ${ranked} and ${stale} and ${searchVector(t)} @@ query.q and not (${searchHeadVector(t)} @@ query.q)) as rest_rows`
  const rest = tierPage(2, restRows, sql`true`, where, s)
  const rows = await database.rows<TaskRow & { tier: number; rank: string; snippet: string }>(sql`
    with query as (
      select o.search_language::regconfig as lang, websearch_to_tsquery(o.search_language::regconfig, ${s.q}) as q
      from organizations o where o.id = ${orgId}::uuid
    ), head as (${head}), rest as (${rest}), page as (
      select * from head union all select * from rest order by tier, rank desc, id limit ${s.limit}::int
    )
    select ${snapshotColumns}, page.tier, page.rank::text as rank,
      ts_headline(query.lang, ${escaped(sql`(content->>'title') || E'\n' || (content->>'description')`)}, query.q, ${HEADLINE_OPTIONS}) as snippet
    from page join tasks using (id), query
    where org_id = ${orgId}::uuid
    order by page.tier, page.rank desc, id`)
  return rows.map((r) => ({ task: rowToSnapshot(r), tier: Number(r.tier) as SearchTier, rank: r.rank, id: r.id, snippet: r.snippet }))
}
