import t from 'tap'
import { sql } from 'drizzle-orm'
import postgres from 'postgres'
import { openDatabase } from '../../src/storage/index.js'
import { createTestDatabaseUrl } from '../helpers/db.js'

t.test('migrations run on PostgreSQL, twice at once, idempotently', async (t) => {
  const url = await createTestDatabaseUrl(t)
  const [a, b] = await Promise.all([
    openDatabase({ databaseUrl: url, dataDir: '/tmp' }),
    openDatabase({ databaseUrl: url, dataDir: '/tmp' }),
  ])
  t.teardown(async () => {
    await a.close()
    await b.close()
  })
  const [row] = await a.rows<{ n: number }>(sql`select count(*)::int as n from task_ops`)
  t.equal(row.n, 0)
  t.ok(await b.ping())
  const c = postgres(url, { max: 1 })
  const applied = await c`select count(*)::int as n from drizzle.__drizzle_migrations`
  await c.end()
  t.ok(applied[0].n >= 1, 'migrations recorded once each')
})

t.test('the same migrations run on PGlite', async (t) => {
  const db = await openDatabase({ dataDir: 'memory://' })
  t.teardown(() => db.close())
  const [row] = await db.rows<{ n: number }>(sql`select count(*)::int as n from tasks`)
  t.equal(row.n, 0)
  t.ok(await db.ping())
})
