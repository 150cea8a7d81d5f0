/**
 * Housekeeping on real PostgreSQL with the real sequencer writing the data:
 * purging deletions moves the horizon (old cursors reset), the op log keeps the
 * replay window while history stays whole, a dry run changes nothing, and the
 * advisory lock lets one of two simultaneous runs work.
 */
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { sql } from 'drizzle-orm'
import { MemoryBus, MemoryHub } from '../../src/bus/memory.js'
import { DEFAULT_LIMITS } from '../../src/domain/index.js'
import { TaskSequencer } from '../../src/sequencer/index.js'
import type { Principal } from '../../src/auth/principal.js'
import { postgresTaskStore } from '../../src/storage/postgres-task-store.js'
import { insertComment, deleteComment } from '../../src/storage/comments.js'
import { loadHistory, loadOps } from '../../src/storage/tasks.js'
import { runHousekeeping, type HousekeepingOptions } from '../../src/storage/housekeeping/run.js'
import { pullChanges } from '../../src/storage/sync/pull.js'
import { readHorizon } from '../../src/storage/sync/horizon.js'
import { recordSync } from '../../src/storage/sync/log.js'
import { createTestDatabase } from '../helpers/db.js'

const DAY = 86_400_000
const database = await createTestDatabase(t)
const bus = new MemoryBus('hk-test', new MemoryHub())
const sequencer = new TaskSequencer({ store: postgresTaskStore(database), bus, limits: DEFAULT_LIMITS, instanceId: 'hk-test', replayWindow: 10 })
t.teardown(() => sequencer.drain())
const orgId = randomUUID()
const me: Principal = { orgId, userId: randomUUID(), deviceId: randomUUID(), role: 'member' }
const options: HousekeepingOptions = { tombstoneTtlDays: 90, syncLogTtlDays: 30, replayWindowOps: 10 }
const inDays = (d: number) => new Date(Date.now() + d * DAY)

async function createTask(title: string): Promise<string> {
  const taskId = randomUUID()
  await sequencer.create({ principal: me, taskId, clientId: null, seq: null, init: { title } })
  return taskId
}
const count = async (table: string, where = sql`true`) =>
  Number((await database.rows<{ n: string }>(sql`select count(*) as n from ${sql.raw(table)} where ${where}`))[0].n)

t.test('expired deletions are purged with everything under them, and the horizon moves', async (t) => {
  const kept = await createTask('kept')
  const gone = await createTask('gone')
  const at = new Date().toISOString()
  await insertComment(database, { orgId, id: randomUUID(), taskId: gone, parentId: null, authorId: me.userId, body: 'on gone', at }, { clientId: null, seq: null, digest: null })
  const dropped = randomUUID()
  await insertComment(database, { orgId, id: dropped, taskId: kept, parentId: null, authorId: me.userId, body: 'dropped', at }, { clientId: null, seq: null, digest: null })
  await deleteComment(database, orgId, dropped, at, { clientId: null, seq: null, digest: null })
  const before = await pullChanges(database, { orgId, deviceId: me.deviceId, limit: 100 })
  if ('reset' in before) throw new Error('reset')
  await sequencer.submit({ principal: me, taskId: gone, baseRev: 1, clientId: null, seq: null, op: { delete: true } })

  const early = await runHousekeeping(database, options)
  t.same(early.purged, { tasks: 0, ops: 0, comments: 0, tombstones: 0, horizonXid: null }, 'nothing is old enough yet')

  const dry = await runHousekeeping(database, { ...options, dryRun: true, now: inDays(91) })
  t.same([dry.ran, dry.dryRun, dry.purged!.tasks, dry.purged!.comments, dry.purged!.tombstones], [true, true, 1, 2, 2], 'a dry run counts')
  t.equal(await count('tasks', sql`id = ${gone}::uuid`), 1, 'and rolls back')
  t.equal(await readHorizon(database), null)

  const real = await runHousekeeping(database, { ...options, now: inDays(91) })
  t.same(real.purged!, { ...dry.purged!, horizonXid: real.purged!.horizonXid }, 'the real run does what the dry run said')
  t.equal(await count('tasks', sql`id = ${gone}::uuid`), 0, 'task row gone')
  t.equal(await count('task_ops', sql`task_id = ${gone}::uuid`), 0, 'its op log gone')
  t.equal(await count('comments', sql`task_id = ${gone}::uuid or id = ${dropped}::uuid`), 0, 'its comments and the deleted comment gone')
  t.equal(await count('tombstones'), 0, 'tombstones gone')
  t.equal((await loadHistory(database, orgId, gone, 1, 10)).length, 2, 'history is kept for audit')
  t.equal(await sequencer.snapshot(orgId, gone), null, 'a read of the purged task finds nothing (404)')
  t.equal(await count('tasks', sql`id = ${kept}::uuid`), 1, 'live tasks untouched')
  t.equal(String((await readHorizon(database))!.xid), real.purged!.horizonXid)

  t.same(await pullChanges(database, { orgId, deviceId: me.deviceId, cursor: before.cursor, limit: 100 }), { reset: true }, 'a cursor from before the purge resets')
  const full = await pullChanges(database, { orgId, deviceId: me.deviceId, limit: 100 })
  if ('reset' in full) throw new Error('reset')
  t.same(full.tasks.map((x) => x.id), [kept], 'a full pull converges on what is left')
})

t.test('the op log keeps the replay window; history and the snapshot stay whole', async (t) => {
  const taskId = await createTask('p')
  for (let rev = 1; rev < 15; rev++) await sequencer.submit({ principal: me, taskId, baseRev: rev, clientId: null, seq: null, op: { priority: { set: rev % 5 } } })
  const report = await runHousekeeping(database, options)
  t.equal(report.opsTrimmed, 5, 'revs 1..5 of 15 trimmed')
  t.same((await loadOps(database, orgId, taskId, 1, 100)).map((o) => o.rev), [6, 7, 8, 9, 10, 11, 12, 13, 14, 15])
  t.equal((await loadHistory(database, orgId, taskId, 1, 100)).length, 15, 'history keeps every rev')
  const ack = await sequencer.submit({ principal: me, taskId, baseRev: 5, clientId: null, seq: null, op: { title: [1, '!'] } })
  t.equal(ack.rev, 16, 'an op at the edge of the window still transforms against the kept ops')
  t.equal((await runHousekeeping(database, options)).opsTrimmed, 1)
})

t.test('trimming and purging the op log keep every (clientId, seq) record, lastSeq and history entry it carried', async (t) => {
  const store = postgresTaskStore(database)
  const clientId = randomUUID()
  await store.claimClient(clientId, { orgId, userId: me.userId, deviceId: me.deviceId })
  const taskId = randomUUID()
  await sequencer.create({ principal: me, taskId, clientId, seq: 1, init: { title: 'r' } })
  const acks = []
  for (let rev = 1; rev < 15; rev++) {
    acks.push(await sequencer.submit({ principal: me, taskId, baseRev: rev, clientId, seq: rev + 1, op: { title: [rev, String(rev % 10)] } }))
  }
  const records = await Promise.all(Array.from({ length: 15 }, (_, i) => store.findMutation(orgId, clientId, i + 1)))
  const history = await loadHistory(database, orgId, taskId, 1, 100)
  t.equal(await count('client_mutations', sql`client_id = ${clientId}::uuid`), 0, 'the records are on the op-log rows')
  t.equal(await count('task_history', sql`task_id = ${taskId}::uuid`), 0, 'and so are the history entries')

  t.equal((await runHousekeeping(database, options)).opsTrimmed, 5, 'revs 1..5 of 15 trimmed')
  t.equal(await count('client_mutations', sql`client_id = ${clientId}::uuid`), 5, "the trimmed rows' records moved to client_mutations")
  t.equal(await count('task_history', sql`task_id = ${taskId}::uuid`), 5, 'their history entries to task_history')
  t.same(await Promise.all(Array.from({ length: 15 }, (_, i) => store.findMutation(orgId, clientId, i + 1))), records, 'every record unchanged, digests included')
  t.same(await loadHistory(database, orgId, taskId, 1, 100), history, 'the history unchanged')
  const resend = await sequencer.submit({ principal: me, taskId, baseRev: 2, clientId, seq: 3, op: { title: [2, '2'] } })
  t.match(resend, { duplicate: true, rev: acks[1].rev }, 'a resend of a trimmed op answers its ack and commits nothing')
  t.same(await store.findMutation(orgId, clientId, 1), { clientId, seq: 1, orgId, kind: 'create', taskId, rev: 1, commentId: null, digest: records[0]!.digest })
  const pulled = await pullChanges(database, { orgId, deviceId: me.deviceId, limit: 100 })
  if ('reset' in pulled) throw new Error('reset')
  t.equal(pulled.lastSeq[clientId], 15, 'lastSeq counts the trimmed and the kept rows')

  await sequencer.submit({ principal: me, taskId, baseRev: 15, clientId, seq: 16, op: { delete: true } })
  const before = await loadHistory(database, orgId, taskId, 1, 100)
  const purged = await runHousekeeping(database, { ...options, now: inDays(91) })
  t.ok(purged.purged!.tasks >= 1, 'the deleted task purged')
  t.equal(await count('task_ops', sql`task_id = ${taskId}::uuid`), 0, 'with its op log')
  t.same(await loadHistory(database, orgId, taskId, 1, 100), before, 'its history kept whole for audit')
  t.match(await store.findMutation(orgId, clientId, 16), { kind: 'op', taskId, rev: 16 }, 'its records kept: a resend is still recognised')
  t.equal(await count('client_mutations', sql`client_id = ${clientId}::uuid`), 16)
})

t.test('the sync log is trimmed by age', async (t) => {
  await recordSync(database, { orgId, userId: me.userId, deviceId: me.deviceId, kind: 'pull', counts: { tasks: 1 }, durationMs: 3 })
  t.equal((await runHousekeeping(database, options)).syncLogTrimmed, 0)
  t.equal((await runHousekeeping(database, { ...options, now: inDays(31) })).syncLogTrimmed, 1)
})

t.test('two simultaneous runs: one works, the other sees the lock; a recent run skips the next', async (t) => {
  const other = await createTestDatabase(t)
  const [a, b] = await Promise.all([runHousekeeping(database, options), runHousekeeping(other, options)])
  t.ok(a.ran && b.ran, 'different databases do not share a lock')
  // Hold the lock from another session, as a second instance mid-run would.
  const { default: postgres } = await import('postgres')
  const holder = postgres(database.url!, { max: 1, onnotice: () => {} })
  t.teardown(() => holder.end())
  await holder.begin(async (tx) => {
    await tx`select pg_advisory_xact_lock(7240312)`
    const blocked = await runHousekeeping(database, options)
    t.same([blocked.ran, blocked.skipped], [false, 'locked'])
  })
  // An hour-long interval, a clock past the last run: the first to get the lock works, the others find it done.
  const runs = await Promise.all([1, 2, 3].map(() => runHousekeeping(database, { ...options, minIntervalMs: 3_600_000, now: inDays(1) })))
  t.equal(runs.filter((r) => r.ran).length, 1, 'exactly one of three concurrent runs worked')
  t.ok(runs.filter((r) => !r.ran).every((r) => r.skipped === 'locked' || r.skipped === 'recent'))
})
