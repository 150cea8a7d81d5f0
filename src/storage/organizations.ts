/**
 * The organization's own settings: its name and the language of its task
 * search (a PostgreSQL text search configuration, `simple` by default).
 */
import { sql } from 'drizzle-orm'
import type { Database } from './db.js'
import { iso } from './tasks.js'

export interface OrganizationSettings {
  id: string
  name: string
  searchLanguage: string
  createdAt: string
}

export async function getOrganizationSettings(database: Database, orgId: string): Promise<OrganizationSettings | null> {
  const rows = await database.rows<{ id: string; name: string; search_language: string; created_at: string }>(sql`
    select id, name, search_language, ${iso(sql`created_at`)} as created_at from organizations where id = ${orgId}::uuid`)
  const r = rows[0]
  return r ? { id: r.id, name: r.name, searchLanguage: r.search_language, createdAt: r.created_at } : null
}

/** The text search configurations the database has (what an org may choose as its language). */
export async function searchLanguages(database: Database): Promise<string[]> {
  const rows = await database.rows<{ name: string }>(sql`select cfgname as name from pg_ts_config order by cfgname`)
  return rows.map((r) => r.name)
}

/**
 * Changes the org's name and/or search language; a new language re-indexes the
 * org's tasks (put in task_search_stale: the search indexer re-computes their vectors).
 * `searchLanguage` must be one of searchLanguages.
 */
export async function updateOrganization(database: Database, orgId: string, change: { name?: string; searchLanguage?: string }): Promise<void> {
  await database.db.transaction(async (tx) => {
    if (change.name !== undefined) await database.rows(sql`update organizations set name = ${change.name} where id = ${orgId}::uuid`, tx)
    const lang = change.searchLanguage
    if (lang === undefined) return
    await database.rows(sql`update organizations set search_language = ${lang} where id = ${orgId}::uuid`, tx)
    // Not a change a pull returns (the language is not part of a task): task_changes stays.
    await database.rows(
      sql`with changed as (
            update tasks set search_language = ${lang}::regconfig where org_id = ${orgId}::uuid and search_language <> ${lang}::regconfig
            returning org_id, id)
          insert into task_search_stale (org_id, task_id) select org_id, id from changed on conflict (org_id, task_id) do nothing`,
      tx,
    )
  })
}
