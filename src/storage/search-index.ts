/**
 * The search vectors of tasks, off the commit path. A commit writes the content and
 * marks the row `search_stale` (a boolean: cheap); the indexer re-computes `search`
 * and `search_head` of stale rows in batches, each task once however many ops it got
 * meanwhile, and clears the mark. Search stays read-your-writes: it computes a stale
 * row's vectors from its content (task-search.ts), and the partial index
 * `tasks_search_stale_idx` keeps that set cheap to find.
 *
 * Several instances may run the indexer: a batch locks its rows `for update skip
 * locked` (a row another instance or a commit holds is left for the next round), and
 * the update computes the vectors from the locked row, so a commit that lands after
 * it marks the row stale again and nothing is indexed from an older content.
 * Clearing the mark keeps the row's change_xid (the trigger skips that update): a
 * pull does not see a re-index as a change.
 */
import { sql, type SQL } from 'drizzle-orm'
import type { Database } from './db.js'

/** Angle brackets escaped: task text is plain text, and the parser would skip `<script>…` as markup. */
const plain = (x: SQL) => sql`replace(replace(coalesce(${x}, ''), '<', '&lt;'), '>', '&gt;')`

/** Title (weight A) and tags (B) of the row `t`'s content, in its search language. */
export const searchHeadVector = (t: SQL): SQL =>
  sql`(setweight(to_tsvector(${t}.search_language, ${plain(sql`${t}.content->>'title'`)}), 'A') || setweight(to_tsvector(${t}.search_language, coalesce(${t}.content->'tags', '[]'::jsonb)), 'B'))`

/** The full document of the row `t`: title (A), tags (B), description (C). */
export const searchVector = (t: SQL): SQL =>
  sql`(${searchHeadVector(t)} || setweight(to_tsvector(${t}.search_language, ${plain(sql`${t}.content->>'description'`)}), 'C'))`

/** Rows re-indexed per statement. */
export const REINDEX_BATCH = 500

/** Re-indexes up to `limit` stale rows (any organization); how many it did. */
export async function reindexStale(database: Database, limit = REINDEX_BATCH): Promise<number> {
  const rows = await database.rows<{ n: number | string }>(sql`
    with stale as (
      select org_id, id from tasks where search_stale limit ${limit}::int for update skip locked
    ), done as (
      update tasks t set search = ${searchVector(sql`t`)}, search_head = ${searchHeadVector(sql`t`)}, search_stale = false
      from stale s where t.org_id = s.org_id and t.id = s.id
      returning 1)
    select count(*) as n from done`)
  return Number(rows[0]?.n ?? 0)
}

/** Re-indexes until no stale row is left (or `maxBatches` ran); rows re-indexed. */
export async function reindexAll(database: Database, maxBatches = Infinity): Promise<number> {
  let total = 0
  for (let i = 0; i < maxBatches; i++) {
    const n = await reindexStale(database)
    total += n
    if (n < REINDEX_BATCH) break
  }
  return total
}
