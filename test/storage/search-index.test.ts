/**
 * The search vectors off the commit path (src/storage/search-index.ts): a commit
 * marks its row stale, search matches and ranks a stale row on vectors computed
 * from its content (the same hits, ranks and snippets as once indexed), the
 * indexer clears the mark without the row counting as changed for a pull, and
 * skips a row another transaction holds. On PostgreSQL and on PGlite.
 */
import t, { type Test } from 'tap'
import { randomUUID } from 'node:crypto'
import { sql } from 'drizzle-orm'
import { MemoryBus } from '../../src/bus/memory.js'
import { DEFAULT_LIMITS, type TaskOp } from '../../src/domain/index.js'
import { TaskSequencer } from '../../src/sequencer/index.js'
import { openDatabase, type Database } from '../../src/storage/index.js'
import { postgresTaskStore } from '../../src/storage/postgres-task-store.js'
import { reindexAll, reindexStale } from '../../src/storage/search-index.js'
import { searchTasks } from '../../src/storage/task-search.js'
import { createTestDatabase } from '../helpers/db.js'

async function suite(t: Test, database: Database, concurrent: boolean) {
  const bus = new MemoryBus('search-index')
  t.teardown(() => bus.close())
  const sequencer = new TaskSequencer({
    store: postgresTaskStore(database),
    bus,
    limits: DEFAULT_LIMITS,
    instanceId: 'search-index',
    replayWindow: 1000,
    logger: { warn: () => {}, error: () => {} },
  })
  const orgId = randomUUID()
  await database.rows(sql`insert into organizations (id, name) values (${orgId}::uuid, 'search')`)
  const principal = { orgId, userId: randomUUID(), deviceId: randomUUID(), role: 'member' as const }
  const create = async (init: { title: string; description?: string; tags?: string[] }) => {
    const taskId = randomUUID()
    await sequencer.create({ principal, taskId, clientId: null, seq: null, init })
    return taskId
  }
  const edit = (taskId: string, baseRev: number, op: TaskOp) => sequencer.submit({ principal, taskId, baseRev, clientId: null, seq: null, op })
  const stale = async () =>
    (await database.rows<{ id: string }>(sql`select task_id as id from task_search_stale where org_id = ${orgId}::uuid order by task_id`)).map((r) => r.id)
  const hits = async (q: string) =>
    (await searchTasks(database, orgId, { q, limit: 10 })).map((h) => ({ id: h.id, tier: h.tier, rank: h.rank, snippet: h.snippet }))

  const alpha = await create({ title: 'Alpha login', description: 'the first one' })
  const beta = await create({ title: 'Beta', description: 'the login page is slow' })
  const gamma = await create({ title: 'Gamma', tags: ['login'] })
  t.same(await stale(), [alpha, beta, gamma].sort(), 'created rows wait for the indexer')

  const before = await hits('login')
  t.same(before.map((h) => [h.id, h.tier]), [[alpha, 1], [gamma, 1], [beta, 2]], 'stale rows are found and tiered from their content')
  t.match(before[0].snippet, /<mark>login<\/mark>/, 'and get their snippet')
  t.equal(await reindexAll(database), 3, 'the indexer re-indexes each stale row once')
  t.same(await stale(), [], 'and clears the mark')
  t.same(await hits('login'), before, 'indexed rows answer the same hits, ranks and snippets')
  t.equal(await reindexStale(database), 0, 'nothing left to re-index')

  // An edit: the stored vectors still hold "login", the content does not.
  const changeXid = async (id: string) => (await database.rows<{ x: string }>(sql`select change_xid::text as x from task_changes where org_id = ${orgId}::uuid and task_id = ${id}::uuid`))[0].x
  await edit(alpha, 1, { title: [6, { d: 5 }, 'signin'] } as TaskOp)
  t.same(await stale(), [alpha], 'a commit marks its row stale')
  t.same((await hits('login')).map((h) => h.id), [gamma, beta], 'a stale row is not found by the words it lost')
  t.same((await hits('signin')).map((h) => [h.id, h.tier]), [[alpha, 1]], 'and is found by the words it got: read-your-writes')
  const edited = await changeXid(alpha)
  t.equal(await reindexAll(database), 1)
  t.equal(await changeXid(alpha), edited, 're-indexing keeps change_xid: a pull does not see it as a change')
  t.same((await hits('signin')).map((h) => h.id), [alpha], 'indexed: the same answer')
  t.same((await hits('login')).map((h) => h.id), [gamma, beta])

  // Many ops between two rounds: one re-index.
  for (let rev = 1; rev < 11; rev++) await edit(beta, rev, { title: [4, ' x'] } as TaskOp)
  t.same(await stale(), [beta])
  t.equal(await reindexAll(database), 1, 'a task is re-indexed once however many ops it got')

  if (!concurrent) return
  // A row another transaction holds (a commit in flight) is skipped, not waited for.
  await edit(gamma, 1, { title: [5, ' two'] } as TaskOp)
  await database.db.transaction(async (tx) => {
    await database.rows(sql`select 1 from tasks where org_id = ${orgId}::uuid and id = ${gamma}::uuid for update`, tx)
    t.equal(await reindexStale(database), 0, 'a locked row is skipped')
  })
  t.same(await stale(), [gamma], 'and stays stale')
  t.equal(await reindexAll(database), 1, 'until the next round')
}

t.test('search indexing on PostgreSQL', async (t) => {
  await suite(t, await createTestDatabase(t), true)
})

t.test('search indexing on PGlite', async (t) => {
  const database = await openDatabase({ dataDir: 'memory://' })
  t.teardown(() => database.close())
  await suite(t, database, false)
})
