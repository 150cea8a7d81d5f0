/** The TaskStore contract on PostgreSQL (the probe reads the tables beside the port). */
import t from 'tap'
import { randomUUID } from 'node:crypto'
import postgres from 'postgres'
import { sql } from 'drizzle-orm'
import type { JsonValue } from '../../src/domain/types.js'
import { postgresTaskStore } from '../../src/storage/postgres-task-store.js'
import { openDatabase } from '../../src/storage/index.js'
import { loadHistory } from '../../src/storage/tasks.js'
import { createTestDatabaseUrl } from '../helpers/db.js'
import { taskStoreContract } from './task-store-contract.js'

const url = await createTestDatabaseUrl(t)
const database = await openDatabase({ databaseUrl: url, dataDir: '/tmp', poolSize: 2 })
t.teardown(() => database.close())

taskStoreContract(t, async () => ({
  store: postgresTaskStore(database),
  probe: {
    async addProject(orgId, projectId) {
      await database.rows(sql`insert into projects (org_id, id, name, created_by) values (${orgId}::uuid, ${projectId}::uuid, 'p', ${projectId}::uuid)`)
    },
    // The history entries a commit wrote: on their op-log rows (task_history holds older and trimmed ones).
    history: async (orgId, taskId) =>
      (await loadHistory(database, orgId, taskId, 1, 1000)).map((h) => ({ rev: h.rev, changes: h.changes })),
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

t.test('a claim racing another instance\'s uncommitted claim of the same clientId answers that binding', async (t) => {
  const store = postgresTaskStore(database)
  const other = postgres(url, { max: 1, onnotice: () => {} })
  t.teardown(() => other.end())
  const orgId = randomUUID()
  const clientId = randomUUID()
  const theirs = { orgId, userId: randomUUID(), deviceId: randomUUID() }
  const mine = { orgId, userId: randomUUID(), deviceId: randomUUID() }
  let claim: Promise<unknown> | undefined
  await other.begin(async (tx) => {
    await tx`insert into clients (client_id, org_id, user_id, device_id) values (${clientId}, ${orgId}, ${theirs.userId}, ${theirs.deviceId})`
    claim = store.claimClient(clientId, mine)
    // The claim waits on the uncommitted row before this transaction commits.
    for (let waited = 0; ; waited += 20) {
      const [{ n }] = await tx`select count(*)::int as n from pg_locks where locktype = 'transactionid' and not granted`
      if (n > 0) break
      if (waited > 10_000) throw new Error('the claim never waited on the uncommitted row')
      await new Promise((r) => setTimeout(r, 20))
    }
  })
  t.same(await claim, theirs, 'the binding that committed first holds')
})
