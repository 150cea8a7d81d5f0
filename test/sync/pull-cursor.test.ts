/**
 * Pull cursors on real PostgreSQL, below the HTTP layer: pagination, the horizon,
 * malformed cursors, and the reason cursors are snapshots: a transaction that
 * was in progress when a pull ran is returned by the next pull, not skipped.
 */
import t from 'tap'
import { randomUUID } from 'node:crypto'
import postgres from 'postgres'
import { sql, type SQL } from 'drizzle-orm'
import { createTestDatabase } from '../helpers/db.js'
import { pullChanges } from '../../src/storage/sync/pull.js'
import type { PullAnswer, PullPage } from '../../src/protocol/sync.js'
import { decodeCursor, encodeCursor } from '../../src/storage/sync/cursor.js'
import { advanceHorizon, isBeforeHorizon } from '../../src/storage/sync/horizon.js'
import { parseSnapshot } from '../../src/storage/sync/snapshot.js'
import type { Database } from '../../src/storage/db.js'

const org = randomUUID()
const user = randomUUID()
const device = randomUUID()

function content(title: string, deleted = false) {
  return { title, description: '', status: 'todo', priority: 0, tags: [], assigneeId: null, dueAt: null, projectId: null, customFields: {}, deleted }
}

async function insertTask(database: Database, id: string, title: string): Promise<void> {
  await database.rows(sql`insert into tasks (org_id, id, rev, content, clock, status, priority, created_by, updated_by)
    values (${org}::uuid, ${id}::uuid, 1, ${JSON.stringify(content(title))}::jsonb, '{}'::jsonb, 'todo', 0, ${user}::uuid, ${user}::uuid)`)
  await database.rows(sql`insert into task_changes (org_id, task_id) values (${org}::uuid, ${id}::uuid)`)
}

/** Changes a task as a commit does: the row and its change_xid in task_changes, in one statement. */
async function updateTask(database: Database, id: string, set: SQL): Promise<void> {
  await database.rows(sql`with u as (update tasks set ${set} where org_id = ${org}::uuid and id = ${id}::uuid returning org_id, id)
    update task_changes x set change_xid = pg_current_xact_id() from u where x.org_id = u.org_id and x.task_id = u.id`)
}

const page = (a: PullAnswer): PullPage => {
  if ('reset' in a) throw new Error('unexpected reset')
  return a
}

/** Follows a catch-up to its last page; returns every page's tasks (title by id) and the final cursor. */
async function catchUp(database: Database, cursor: string | undefined, limit = 1000) {
  const titles = new Map<string, string>()
  const tombstones: string[] = []
  let pages = 0
  for (;;) {
    const p = page(await pullChanges(database, { orgId: org, deviceId: device, cursor, limit }))
    pages++
    for (const task of p.tasks) titles.set(task.id, task.title)
    for (const b of p.tombstones) tombstones.push(b.id)
    cursor = p.cursor
    if (!p.hasMore) return { titles, tombstones, cursor, pages }
  }
}

t.test('pull pages through every task once, then returns only what changed', async (t) => {
  const database = await createTestDatabase(t)
  const ids = Array.from({ length: 25 }, () => randomUUID())
  for (const [i, id] of ids.entries()) await insertTask(database, id, `task ${i}`)

  const first = await catchUp(database, undefined, 7)
  t.equal(first.pages, 4, '25 tasks in pages of 7')
  t.equal(first.titles.size, 25)

  const empty = page(await pullChanges(database, { orgId: org, deviceId: device, cursor: first.cursor, limit: 7 }))
  t.same([empty.tasks.length, empty.comments.length, empty.tombstones.length, empty.hasMore], [0, 0, 0, false], 'nothing new')

  await updateTask(database, ids[3], sql`content = jsonb_set(content, '{title}', '"renamed"'), rev = 2`)
  await updateTask(database, ids[4], sql`content = jsonb_set(content, '{deleted}', 'true'), deleted = true, rev = 2`)
  const delta = await catchUp(database, empty.cursor, 7)
  t.same([...delta.titles], [[ids[3], 'renamed']], 'the edited task')
  t.same(delta.tombstones, [ids[4]], 'the deleted task as a tombstone only')

  const full = await catchUp(database, undefined, 100)
  t.equal(full.titles.size, 24, 'a pull from the start omits deleted tasks')
  t.same(full.tombstones, [], 'and their tombstones')
})

t.test('a row changed between pages of one catch-up is not lost', async (t) => {
  const database = await createTestDatabase(t)
  const ids = Array.from({ length: 6 }, () => randomUUID())
  for (const [i, id] of ids.entries()) await insertTask(database, id, `task ${i}`)
  const p1 = page(await pullChanges(database, { orgId: org, deviceId: device, limit: 3 }))
  t.ok(p1.hasMore)
  const seen = new Set(p1.tasks.map((x) => x.id))
  const early = ids.find((id) => seen.has(id))!
  // Changes a task already delivered in page 1: its new version must come in this catch-up or the next.
  await updateTask(database, early, sql`content = jsonb_set(content, '{title}', '"late edit"'), rev = 2`)
  const rest = await catchUp(database, p1.cursor, 3)
  const next = await catchUp(database, rest.cursor, 3)
  const latest = rest.titles.get(early) ?? next.titles.get(early)
  t.equal(latest, 'late edit', 'the new version arrives')
  t.equal(next.titles.get(early), 'late edit', 'the next catch-up returns it (its xid is not visible in the target)')
})

t.test('a transaction that commits late (open during a pull) is returned by the next pull', async (t) => {
  const database = await createTestDatabase(t)
  const a = randomUUID()
  const b = randomUUID()
  await insertTask(database, a, 'a')
  const start = await catchUp(database, undefined)
  t.equal(start.titles.size, 1)

  // Another "instance": its own connection, a transaction that takes an xid, then waits.
  const other = postgres(database.url!, { max: 1, onnotice: () => {} })
  t.teardown(() => other.end())
  let release!: () => void
  const held = new Promise<void>((r) => (release = r))
  let opened!: () => void
  const isOpen = new Promise<void>((r) => (opened = r))
  const late = other.begin(async (tx) => {
    await tx`update tasks set content = jsonb_set(content, '{title}', '"late"'), rev = 2 where id = ${a}`
    await tx`update task_changes set change_xid = pg_current_xact_id() where task_id = ${a}`
    opened()
    await held
  })
  await isOpen
  // A later transaction (higher xid) commits while the first is still open.
  await insertTask(database, b, 'b')
  const during = await catchUp(database, start.cursor)
  t.same([...during.titles.keys()], [b], 'the committed change is returned, the open one is not visible')
  release()
  await late
  const after = await catchUp(database, during.cursor)
  t.same([...after.titles], [[a, 'late']], 'the late commit is returned by the next pull')
  const again = await catchUp(database, after.cursor)
  t.equal(again.titles.size, 0, 'and only once')
})

t.test('malformed, unknown and too-old cursors answer reset', async (t) => {
  const database = await createTestDatabase(t)
  await insertTask(database, randomUUID(), 'x')
  const ok = await catchUp(database, undefined)
  const pull = (cursor: string) => pullChanges(database, { orgId: org, deviceId: device, cursor, limit: 10 })
  for (const bad of ['', 'garbage!', 'eyJ2IjoxfQ', Buffer.from('{"v":2,"s":null}').toString('base64url'),
    Buffer.from('{"v":1,"s":"9:5:"}').toString('base64url'), Buffer.from('[1,2]').toString('base64url')]) {
    t.same(await pull(bad), { reset: true }, `reset for ${JSON.stringify(bad)}`)
  }
  const future = encodeCursor({ since: parseSnapshot('900000000:900000000:')! })
  t.same(await pull(future), { reset: true }, 'a snapshot this database never issued')
  t.notOk('reset' in (await pull(ok.cursor)), 'a good cursor pulls')

  const since = decodeCursor(ok.cursor)!.since!
  // A purge of what a transaction the cursor could not see (its xmax) wrote. xids are
  // cluster-wide: the snapshot after the purge is the real one, listing what other
  // databases' transactions had in progress (a made-up empty list made fresh cursors
  // that saw them in progress look too old whenever other test files ran at once).
  const [{ snap }] = await database.rows<{ snap: string }>(sql`select pg_current_snapshot()::text as snap`)
  await advanceHorizon(database, since.xmax, parseSnapshot(snap)!)
  t.same(await pull(ok.cursor), { reset: true }, 'a cursor that cannot see the horizon is too old')
  const fresh = await catchUp(database, undefined)
  t.notOk('reset' in (await pull(fresh.cursor)), 'a cursor issued after the horizon is fine')
})

t.test('which cursors are before the horizon', async (t) => {
  const c = parseSnapshot('10:20:12,15')!
  const h = (xid: number, running: number[] = []) => ({ xid: BigInt(xid), running: running.map(BigInt), at: '' })
  t.equal(isBeforeHorizon(c, null), false, 'nothing purged yet')
  t.equal(isBeforeHorizon(c, h(20)), true, 'the newest purged transaction was not yet assigned')
  t.equal(isBeforeHorizon(c, h(11)), false, 'everything it had in progress is newer than the horizon')
  t.equal(isBeforeHorizon(c, h(14)), true, '12 was in progress for it and may have been purged')
  t.equal(isBeforeHorizon(c, h(14, [12])), false, '12 was still in progress at the purge, so nothing of it was purged')
  t.equal(isBeforeHorizon(c, h(16, [12])), true, '15 may have been purged')
  t.equal(isBeforeHorizon(parseSnapshot('30:30:')!, h(16, [12])), false, 'a cursor issued after the purge')
})

t.test('cursors round-trip and reject tampering', async (t) => {
  const s = parseSnapshot('10:20:12,15')!
  const c = encodeCursor({ since: s, page: { target: parseSnapshot('10:30:')!, position: { source: 1, xid: '17', id: randomUUID() } } })
  const d = decodeCursor(c)!
  t.equal(d.since!.text, '10:20:12,15')
  t.equal(d.page!.position.source, 1)
  t.equal(parseSnapshot('10:20:25'), null, 'an in-progress xid past xmax')
  t.equal(parseSnapshot('10:20:15,12'), null, 'unsorted xips')
  t.equal(decodeCursor(encodeCursor({ since: s, page: { target: parseSnapshot('1:2:')!, position: { source: 0, xid: '1', id: randomUUID() } } })), null, 'a target before since')
})

t.test('the same pull runs on embedded PGlite', async (t) => {
  const { openDatabase } = await import('../../src/storage/db.js')
  const database = await openDatabase({ dataDir: 'memory://' })
  t.teardown(() => database.close())
  const ids = [randomUUID(), randomUUID(), randomUUID()]
  for (const id of ids) await insertTask(database, id, 'p')
  const first = await catchUp(database, undefined, 2)
  t.equal(first.titles.size, 3)
  await updateTask(database, ids[1], sql`content = jsonb_set(content, '{title}', '"q"'), rev = 2`)
  const delta = await catchUp(database, first.cursor, 2)
  t.same([...delta.titles], [[ids[1], 'q']])
})
