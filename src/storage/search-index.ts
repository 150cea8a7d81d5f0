/**
 * The search vectors of tasks, off the commit path. A commit writes the content and
 * puts the task in `task_search_stale` (`on conflict do nothing`: a task edited again
 * before the next round writes nothing there); the indexer re-computes `search` and
 * `search_head` of stale rows in batches, each task once however many ops it got
 * meanwhile, and removes them from the set. Search stays read-your-writes: it computes
 * a stale row's vectors from its content (task-search.ts), and the small set keeps
 * those rows cheap to find. The mark is not a column of `tasks`: an index on it would
 * make the commits' updates of the row non-HOT.
 *
 * Several instances may run the indexer: a batch locks its set entries and their task
 * rows `for update skip locked` (a row another instance or a commit holds is left, with
 * its entry, for the next round), and the update computes the vectors from the locked
 * row, so a commit that lands after it (it waits for the row lock) puts the task back
 * in the set and nothing is indexed from an older content. A re-index does not touch
 * task_changes: a pull does not see it as a change.
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
  // An entry whose task is gone (purged meanwhile) is removed without a re-index.
  const rows = await database.rows<{ n: number | string }>(sql`
    with stale as materialized (
      select org_id, task_id from task_search_stale limit ${limit}::int for update skip locked
    ), locked as materialized (
      select t.org_id, t.id from tasks t join stale s on t.org_id = s.org_id and t.id = s.task_id
      for update of t skip locked
    ), done as (
      update tasks t set search = ${searchVector(sql`t`)}, search_head = ${searchHeadVector(sql`t`)}
      from locked l where t.org_id = l.org_id and t.id = l.id
      returning 1
    ), cleared as (
      delete from task_search_stale x using stale s
      where x.org_id = s.org_id and x.task_id = s.task_id
        and (exists (select 1 from locked l where l.org_id = s.org_id and l.id = s.task_id)
          or not exists (select 1 from tasks t where t.org_id = s.org_id and t.id = s.task_id)))
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
