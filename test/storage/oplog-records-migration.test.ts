/**
 * Migration 0017's backfill, on a database migrated to 0016 with data in it: the
 * records and history entries of rows still in the op log move onto them (their
 * committing transaction kept), the others stay where they were, and every read
 * (findMutation, history, the commit's duplicate check, pull's lastSeq) answers
 * what it answered before.
 */
import t from 'tap'
import { randomBytes, randomUUID } from 'node:crypto'
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import postgres from 'postgres'
import { sql } from 'drizzle-orm'
import { drizzle } from 'drizzle-orm/postgres-js'
import { migrate } from 'drizzle-orm/postgres-js/migrator'
import { MIGRATIONS_DIR, openDatabase } from '../../src/storage/index.js'
import { findMutation } from '../../src/storage/clients.js'
import { loadHistory } from '../../src/storage/tasks.js'
import { commitOps } from '../../src/storage/tasks-commit.js'
import { pullChanges } from '../../src/storage/sync/pull.js'
import { PG_ADMIN_URL } from '../helpers/db.js'

const name = `tasksync_test_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`
const admin = postgres(PG_ADMIN_URL, { max: 1, onnotice: () => {} })
await admin.unsafe(`create database ${name}`)
await admin.end()
t.teardown(async () => {
  const a = postgres(PG_ADMIN_URL, { max: 1, onnotice: () => {} })
  await a.unsafe(`drop database if exists ${name} with (force)`)
  await a.end()
})
const u = new URL(PG_ADMIN_URL)
u.pathname = '/' + name
const url = u.toString()

// The migrations up to 0016, as a database deployed before this change has them.
const before = mkdtempSync(join(tmpdir(), 'mig-'))
t.teardown(() => rmSync(before, { recursive: true, force: true }))
cpSync(MIGRATIONS_DIR, before, { recursive: true })
const journal = JSON.parse(readFileSync(join(before, 'meta/_journal.json'), 'utf8')) as { entries: { tag: string }[] }
journal.entries = journal.entries.filter((e) => e.tag < '0017')
writeFileSync(join(before, 'meta/_journal.json'), JSON.stringify(journal))
const client = postgres(url, { max: 1, onnotice: () => {} })
await migrate(drizzle(client), { migrationsFolder: before })

const orgId = randomUUID()
const userId = randomUUID()
const deviceId = randomUUID()
const clientId = randomUUID()
const taskId = randomUUID()
const at = '2026-12-01T10:00:00.000Z'
await client`insert into clients (client_id, org_id, user_id, device_id) values (${clientId}, ${orgId}, ${userId}, ${deviceId})`
await client`insert into tasks (org_id, id, rev, content, clock, status, priority, created_by, updated_by)
  values (${orgId}, ${taskId}, 3, ${JSON.stringify({ title: 'abc', status: 'todo', priority: 0, tags: [], custom: {}, deleted: false, description: '', projectId: null, assigneeId: null, dueAt: null })}::jsonb, '{}', 'todo', 0, ${userId}, ${userId})`
// Revs 2 and 3 are in the op log (rev 1 was trimmed before: its record and entry stayed behind).
for (const rev of [2, 3]) {
  await client`insert into task_ops (org_id, task_id, rev, op, user_id, device_id, client_id, seq, committed_at)
    values (${orgId}, ${taskId}, ${rev}, ${JSON.stringify({ title: [rev - 1, 'x'] })}::jsonb, ${userId}, ${deviceId}, ${clientId}, ${rev}, ${at})`
}
for (const rev of [1, 2, 3]) {
  await client`insert into client_mutations (client_id, seq, org_id, kind, task_id, rev, digest, committed_at)
    values (${clientId}, ${rev}, ${orgId}, ${rev === 1 ? 'create' : 'op'}, ${taskId}, ${rev}, ${'d' + rev}, ${at})`
  await client`insert into task_history (org_id, task_id, rev, user_id, device_id, changes, at)
    values (${orgId}, ${taskId}, ${rev}, ${userId}, ${deviceId}, ${JSON.stringify({ title: { from: String(rev - 1), to: String(rev) } })}::jsonb, ${at})`
}
// A comment's record: it has no op-log row.
await client`insert into client_mutations (client_id, seq, org_id, kind, task_id, comment_id, digest, committed_at)
  values (${clientId}, 4, ${orgId}, 'comment', ${taskId}, ${randomUUID()}, 'd4', ${at})`
const xids = await client<{ seq: string; change_xid: string }[]>`select seq, change_xid::text from client_mutations where client_id = ${clientId} order by seq`
await client.end()

const database = await openDatabase({ databaseUrl: url, dataDir: '/tmp', poolSize: 2 })
t.teardown(() => database.close())

t.test('the backfill moves what has an op-log row onto it, and leaves the rest', async (t) => {
  const moved = await database.rows<{ seq: string; digest: string; change_xid: string; changes: unknown }>(
    sql`select seq, digest, change_xid::text, changes from task_ops where task_id = ${taskId}::uuid order by rev`)
  t.same(moved.map((r) => [Number(r.seq), r.digest, r.change_xid]), [2, 3].map((s) => [s, 'd' + s, xids.find((x) => Number(x.seq) === s)!.change_xid]),
    'digests and committing transactions on the rows')
  t.same(moved.map((r) => r.changes), [{ title: { from: '1', to: '2' } }, { title: { from: '2', to: '3' } }])
  t.same((await database.rows<{ seq: string }>(sql`select seq from client_mutations order by seq`)).map((r) => Number(r.seq)), [1, 4],
    'client_mutations keeps the trimmed create and the comment')
  t.same((await database.rows<{ rev: number }>(sql`select rev from task_history`)).map((r) => r.rev), [1], 'task_history the trimmed entry')
})

t.test('every read answers as before the migration', async (t) => {
  for (const seq of [1, 2, 3]) {
    t.same(await findMutation(database, orgId, clientId, seq), { clientId, seq, orgId, kind: seq === 1 ? 'create' : 'op', taskId, rev: seq, commentId: null, digest: 'd' + seq })
  }
  t.match(await findMutation(database, orgId, clientId, 4), { kind: 'comment', digest: 'd4' })
  t.same((await loadHistory(database, orgId, taskId, 1, 10)).map((h) => [h.rev, h.changes.title.to]), [[1, '1'], [2, '2'], [3, '3']])
  t.same((await loadHistory(database, orgId, taskId, 2, 1)).map((h) => h.rev), [2], 'a page of it')
  const pulled = await pullChanges(database, { orgId, deviceId, limit: 10 })
  if ('reset' in pulled) throw new Error('reset')
  t.equal(pulled.lastSeq[clientId], 4)
  const row = (seq: number) => ({
    orgId, taskId, prevRev: 3, rev: 4, content: { title: 'abcd', status: 'todo', priority: 0, tags: [], custom: {}, deleted: false, description: '', projectId: null, assigneeId: null, dueAt: null },
    clock: {}, at, userId, deviceId, clientId, seq, digest: 'new', op: { title: [3, 'd'] }, changes: {}, conflicts: [], tombstone: false,
  }) as unknown as Parameters<typeof commitOps>[1][number]
  for (const seq of [1, 3, 4]) t.match(await commitOps(database, [row(seq)]), [{ kind: 'duplicate', record: { seq } }], `a recorded seq ${seq} is a duplicate`)
  t.same(await commitOps(database, [row(5)]), [{ kind: 'committed' }], 'a new seq commits')
})
