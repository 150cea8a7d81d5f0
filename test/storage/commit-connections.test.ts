/**
 * Commits have connections of their own (db.ts `commitQuery`): with every pooled
 * connection held by slow reads (thousands of resumes or catch-up pulls at once),
 * a commit still runs at once instead of queueing behind them.
 */
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { sql } from 'drizzle-orm'
import { postgresTaskStore } from '../../src/storage/postgres-task-store.js'
import { openDatabase } from '../../src/storage/index.js'
import { createTestDatabaseUrl } from '../helpers/db.js'
import { createRow, opRow } from './task-store-contract.js'

t.test('a commit does not wait for the reads that hold the whole pool', async (t) => {
  const url = await createTestDatabaseUrl(t)
  const database = await openDatabase({ databaseUrl: url, dataDir: '/tmp', poolSize: 2 })
  t.teardown(() => database.close())
  const store = postgresTaskStore(database)
  const orgId = randomUUID()
  const row = createRow(orgId, randomUUID(), { title: 'a' })
  t.same(await store.commitCreate(row), { kind: 'committed' }, 'warm: the commit connections are open')

  const HOLD_S = 6
  const started = Date.now()
  // Twice the pool: both connections busy, and two more reads queued behind them.
  const reads = Array.from({ length: 4 }, () => database.rows(sql`select pg_sleep(${HOLD_S})`))
  await new Promise((r) => setTimeout(r, 300))
  const next = opRow(row, { title: [1, '!'] })
  t.same(await store.commitOps([next]), [{ kind: 'committed' }])
  const commitMs = Date.now() - started
  t.ok(commitMs < (HOLD_S * 1000) / 2, `committed after ${commitMs} ms, while the reads hold the pool for ${HOLD_S} s`)
  await Promise.all(reads)
  t.equal((await store.loadTask(orgId, row.taskId))?.title, 'a!', 'and it is there')
})
