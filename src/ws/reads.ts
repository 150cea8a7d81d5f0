/** The gateway's own storage reads: the latest revs of followed tasks (one query per chunk) and project existence. */
import { sql } from 'drizzle-orm'
import type { Database } from '../storage/db.js'
import { projectExists } from '../storage/tasks.js'
import type { ReadPort } from './ports.js'

export function databaseReads(database: Database): ReadPort {
  return {
    async latestRevs(keys) {
      if (keys.length === 0) return []
      const orgs = keys.map((k) => k.orgId)
      const ids = keys.map((k) => k.taskId)
      const rows = await database.rows<{ org_id: string; id: string; rev: number }>(sql`
        select t.org_id, t.id, t.rev from tasks t
        join unnest(${toPgArray(orgs)}::uuid[], ${toPgArray(ids)}::uuid[]) as k(org_id, id)
          on t.org_id = k.org_id and t.id = k.id`)
      return rows.map((r) => ({ orgId: r.org_id, taskId: r.id, rev: Number(r.rev) }))
    },
    projectExists: (orgId, projectId) => projectExists(database, orgId, projectId),
  }
}

/** A text array literal ({a,b}); ids are UUIDs checked by the message schemas, so no quoting is needed. */
const toPgArray = (xs: string[]): string => `{${xs.join(',')}}`
