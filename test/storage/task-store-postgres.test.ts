/** The TaskStore contract on PostgreSQL (the probe reads the tables beside the port). */
import t from 'tap'
import { sql } from 'drizzle-orm'
import type { JsonValue } from '../../src/domain/types.js'
import { postgresTaskStore } from '../../src/storage/postgres-task-store.js'
import { createTestDatabase } from '../helpers/db.js'
import { taskStoreContract } from './task-store-contract.js'

const database = await createTestDatabase(t)

taskStoreContract(t, async () => ({
  store: postgresTaskStore(database),
  probe: {
    async addProject(orgId, projectId) {
      await database.rows(sql`insert into projects (org_id, id, name, created_by) values (${orgId}::uuid, ${projectId}::uuid, 'p', ${projectId}::uuid)`)
    },
    history: (orgId, taskId) =>
      database.rows<{ rev: number; changes: unknown }>(sql`select rev, changes from task_history where org_id = ${orgId}::uuid and task_id = ${taskId}::uuid order by rev`),
    async conflicts(orgId, taskId) {
      const rows = await database.rows<{ field: string; committed_value: JsonValue; incoming_value: JsonValue; committed_rev: number; incoming_rev: number }>(sql`
        select field, committed_value, incoming_value, committed_rev, incoming_rev from conflicts
        where org_id = ${orgId}::uuid and task_id = ${taskId}::uuid order by incoming_rev, field`)
      return rows.map((r) => ({ field: r.field, committedValue: r.committed_value, incomingValue: r.incoming_value, committedRev: r.committed_rev, incomingRev: r.incoming_rev }))
    },
    async tombstone(orgId, kind, id) {
      const rows = await database.rows<{ rev: number | null }>(sql`select rev from tombstones where org_id = ${orgId}::uuid and kind = ${kind} and id = ${id}::uuid`)
      return rows[0] ?? null
    },
  },
}))
