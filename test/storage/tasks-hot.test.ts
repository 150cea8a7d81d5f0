/**
 * A steady edit updates the task row HOT (migration 0018): no column of `tasks` an
 * index covers changes in it — pull's change_xid is in task_changes, search staleness
 * in task_search_stale — and the table keeps room on its pages (fillfactor 70). Pull
 * still returns every task changed after a cursor, at its latest rev, and nothing for
 * a re-index; search still sees the edits at once. On PostgreSQL (the HOT counters)
 * and on PGlite (the same pull and search).
 */
import t, { type Test } from 'tap'
import { randomUUID } from 'node:crypto'
import { sql } from 'drizzle-orm'
import { MemoryBus } from '../../src/bus/memory.js'
import { DEFAULT_LIMITS, type TaskOp } from '../../src/domain/index.js'
import { TaskSequencer } from '../../src/sequencer/index.js'
import { openDatabase, type Database } from '../../src/storage/index.js'
import { postgresTaskStore } from '../../src/storage/postgres-task-store.js'
import { reindexAll } from '../../src/storage/search-index.js'
import { searchTasks } from '../../src/storage/task-search.js'
import { pullChanges } from '../../src/storage/sync/pull.js'
import type { PullAnswer, PullPage } from '../../src/protocol/sync.js'
import { createTestDatabase } from '../helpers/db.js'

const page = (a: PullAnswer): PullPage => {
  if ('reset' in a) throw new Error('unexpected reset')
  return a
}

interface Counters {
  upd: number
  hot: number
}

/** The tasks table's update counters, once every backend's pending counts are in (stats are flushed when a backend idles). */
async function counters(database: Database, atLeast: number): Promise<Counters> {
  for (let i = 0; ; i++) {
    const [r] = await database.rows<{ upd: string; hot: string }>(
      sql`select n_tup_upd as upd, n_tup_hot_upd as hot from pg_stat_user_tables where relname = 'tasks'`,
    )
    const c = { upd: Number(r.upd), hot: Number(r.hot) }
    if (c.upd >= atLeast || i >= 150) return c
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

async function suite(t: Test, database: Database, stats: boolean) {
  const bus = new MemoryBus('tasks-hot')
  t.teardown(() => bus.close())
  const sequencer = new TaskSequencer({
    store: postgresTaskStore(database),
    bus,
    limits: DEFAULT_LIMITS,
    instanceId: 'tasks-hot',
    replayWindow: 1000,
    logger: { warn: () => {}, error: () => {} },
  })
  const orgId = randomUUID()
  await database.rows(sql`insert into organizations (id, name) values (${orgId}::uuid, 'hot')`)
  const principal = { orgId, userId: randomUUID(), deviceId: randomUUID(), role: 'member' as const }
  const ids: string[] = []
  for (let i = 0; i < 20; i++) {
    const taskId = randomUUID()
    await sequencer.create({ principal, taskId, clientId: null, seq: null, init: { title: `task ${i} about lanterns`, description: 'a steady edit' } })
    ids.push(taskId)
  }
  t.equal(await reindexAll(database), 20, 'the created tasks are indexed')
  const pull = async (cursor?: string) => page(await pullChanges(database, { orgId, deviceId: principal.deviceId, cursor, limit: 7 }))
  let first = await pull()
  const all = new Set(first.tasks.map((x) => x.id))
  while (first.hasMore) {
    first = await pull(first.cursor)
    for (const x of first.tasks) all.add(x.id)
  }
  t.equal(all.size, 20, 'a full pull returns every task')
  const cursor = first.cursor

  // The re-index's 20 updates (not HOT: the search vectors are indexed) counted first.
  const before = stats ? await counters(database, 20) : null
  if (before) t.same(before, { upd: 20, hot: 0 }, 'the re-index updated each row once')
  // Five rounds of edits of the first ten tasks, as the steady load does: a title character and a custom field.
  const edited = ids.slice(0, 10)
  for (let round = 0; round < 5; round++) {
    for (const id of edited) {
      const r = await sequencer.submit({ principal, taskId: id, baseRev: round + 1, clientId: null, seq: null, op: { title: ['x'], customFields: { n: { set: round } } } as TaskOp })
      if (r.rev !== round + 2 || r.noop) throw new Error(`edit: rev ${r.rev}`)
    }
  }
  if (before) {
    const after = await counters(database, before.upd + 50)
    t.equal(after.upd - before.upd, 50, 'fifty updates of the tasks row')
    t.equal(after.hot - before.hot, 50, 'every one of them HOT: no new index entry')
  }

  // Pull after the edits: the edited tasks, each once, at its latest rev.
  const seen = new Map<string, number>()
  let p = await pull(cursor)
  for (;;) {
    for (const x of p.tasks) {
      t.notOk(seen.has(x.id), 'a task once per catch-up')
      seen.set(x.id, x.rev)
      t.equal(x.title, `xxxxx${x.title.slice(5)}`)
    }
    if (!p.hasMore) break
    p = await pull(p.cursor)
  }
  t.same([...seen.keys()].sort(), [...edited].sort(), 'a delta pull returns exactly the edited tasks')
  t.same([...new Set(seen.values())], [6], 'at their latest rev')

  // Search before the indexer: the edits are found (read-your-writes), through the stale set.
  const stale = await database.rows<{ n: number }>(sql`select count(*)::int as n from task_search_stale where org_id = ${orgId}::uuid`)
  t.equal(Number(stale[0].n), 10, 'the edited tasks wait for the indexer')
  const hits = async (q: string) => (await searchTasks(database, orgId, { q, limit: 50 })).map((h) => h.id).sort()
  t.same(await hits('xxxxxtask'), [...edited].sort(), 'search finds the new words before the re-index')
  t.equal(await reindexAll(database), 10, 'each edited task re-indexed once')
  t.same(await hits('xxxxxtask'), [...edited].sort(), 'and after it')
  const quiet = await pull(p.cursor)
  t.same([quiet.tasks.length, quiet.tombstones.length, quiet.hasMore], [0, 0, false], 'a re-index is not a change for pull')

  // A delete (a tombstone op) still reaches pull.
  const gone = ids[15]
  const del = await sequencer.submit({ principal, taskId: gone, baseRev: 1, clientId: null, seq: null, op: { delete: true } as TaskOp })
  t.equal(del.rev, 2)
  const after = await pull(quiet.cursor)
  t.same(after.tombstones, [{ kind: 'task', id: gone, rev: 2 }], 'a deleted task as its tombstone')
}

t.test('on PostgreSQL', async (t) => {
  const database = await createTestDatabase(t)
  const [{ opts }] = await database.rows<{ opts: string[] | null }>(sql`select reloptions as opts from pg_class where relname = 'tasks'`)
  t.same(opts, ['fillfactor=70'], 'tasks keeps room for HOT updates')
  await suite(t, database, true)
})

t.test('on PGlite', async (t) => {
  const database = await openDatabase({ dataDir: 'memory://' })
  t.teardown(() => database.close())
  await suite(t, database, false)
})
