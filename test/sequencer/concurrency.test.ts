/**
 * Two sequencer instances (own connection pools, own hot caches) sharing one
 * PostgreSQL database, with writers on both submitting random ops to a few tasks.
 */
import t from 'tap'
import { randomUUID } from 'node:crypto'
import fc from 'fast-check'
import { sql } from 'drizzle-orm'
import { MemoryHub } from '../../src/bus/memory.js'
import { openDatabase } from '../../src/storage/index.js'
import type { CommitResult } from '../../src/sequencer/index.js'
import type { TaskContent, TaskSnapshot } from '../../src/domain/index.js'
import { createTestDatabaseUrl } from '../helpers/db.js'
import { buildOp, rawOp, UUIDS } from '../domain/gen.js'
import { contentOf, instance, principal, replay } from './helpers.js'

const url = await createTestDatabaseUrl(t)
await (await openDatabase({ databaseUrl: url, dataDir: '/tmp', poolSize: 1 })).close()
const hub = new MemoryHub()

t.test('concurrent random ops from two instances: gap-free revs, exact log, convergence', async (t) => {
  const a = await instance(t, url, hub)
  const b = await instance(t, url, hub, { commitConcurrency: 2, maxBatch: 3 })
  const orgId = randomUUID()
  for (const id of UUIDS) {
    await a.database.rows(sql`insert into projects (org_id, id, name, created_by) values (${orgId}::uuid, ${id}::uuid, 'p', ${id}::uuid)`)
  }
  const tasks = [randomUUID(), randomUUID(), randomUUID()]
  const creator = principal(orgId)
  for (const taskId of tasks) await a.sequencer.create({ principal: creator, taskId, clientId: null, seq: null, init: { title: 'start' } })

  // Each writer keeps the snapshot of its last ack and builds its next op on it,
  // so ops are based on old revs whenever the other writers got in between.
  const acks: { taskId: string; clientId: string; seq: number; rev: number; event: CommitResult['event'] }[] = []
  const raws = fc.sample(rawOp, { numRuns: 2000, seed: 42 })
  let next = 0
  async function writer(seqr: typeof a.sequencer, taskId: string, n: number): Promise<void> {
    const me = principal(orgId)
    const clientId = randomUUID()
    let known: TaskSnapshot = (await seqr.snapshot(orgId, taskId))!
    for (let seq = 1; seq <= n; seq++) {
      const raw = { ...raws[next++ % raws.length], delete: undefined }
      const op = buildOp(contentOf(known) as TaskContent, raw)
      const res = await seqr.submit({ principal: me, taskId, baseRev: known.rev, clientId, seq, op })
      t.equal(res.duplicate, false)
      acks.push({ taskId, clientId, seq, rev: res.rev, event: res.event })
      known = res.snapshot
      if (seq % 7 === 0) {
        // A resend (as after a reconnect) answers the original ack and changes nothing.
        const again = await seqr.submit({ principal: me, taskId, baseRev: known.rev, clientId, seq, op })
        t.same([again.rev, again.duplicate], [res.rev, true])
      }
    }
  }
  const writers = []
  for (const taskId of tasks) {
    for (let i = 0; i < 2; i++) {
      writers.push(writer(a.sequencer, taskId, 25))
      writers.push(writer(b.sequencer, taskId, 25))
    }
  }
  await Promise.all(writers)

  for (const taskId of tasks) {
    const { content, revs } = await replay(a.store, orgId, taskId)
    const stored = (await a.sequencer.snapshot(orgId, taskId))!
    t.same(revs, Array.from({ length: stored.rev }, (_, i) => i + 1), 'revs 1…n, no gap, no duplicate')
    t.same(content, contentOf(stored), 'replaying the log gives the stored snapshot')
    const committed = acks.filter((x) => x.taskId === taskId && x.event)
    t.equal(committed.length, stored.rev - 1, 'every committed ack is one rev')
    const clock = Object.values(stored.clock).reduce((s, n) => s + n, 0)
    t.equal(clock, stored.rev, 'the vector clock counts every commit')
  }
  const log = await a.database.rows<{ client_id: string; seq: number; rev: number; task_id: string; op: unknown }>(
    sql`select task_id, client_id, seq::int as seq, rev, op from task_ops where org_id = ${orgId}::uuid and client_id is not null`,
  )
  const byKey = new Map(log.map((r) => [`${r.client_id}:${r.seq}`, r]))
  t.equal(byKey.size, log.length, 'each (clientId, seq) is in the log at most once')
  let exact = 0
  for (const ack of acks) {
    const row = byKey.get(`${ack.clientId}:${ack.seq}`)
    if (!ack.event) continue // identity after transform: nothing committed
    if (row && row.rev === ack.rev && row.task_id === ack.taskId) exact++
    t.same(row?.op, ack.event.op, 'the log holds the op as acked')
  }
  t.equal(exact, acks.filter((x) => x.event).length, 'every acked op is in the log exactly once, at its acked rev')
  t.ok(b.sequencer.commitStats.statements > 0)
})

t.test('a lost race (the cached task is behind) reloads, transforms and commits', async (t) => {
  const a = await instance(t, url, hub)
  const b = await instance(t, url, hub)
  const orgId = randomUUID()
  const p = principal(orgId)
  const taskId = randomUUID()
  await a.sequencer.create({ principal: p, taskId, clientId: null, seq: null, init: { title: 'abc' } })
  await a.sequencer.submit({ principal: p, taskId, baseRev: 1, clientId: null, seq: null, op: { title: ['1'] } }) // a caches rev 2
  await b.sequencer.submit({ principal: p, taskId, baseRev: 2, clientId: null, seq: null, op: { title: ['2'] } }) // rev 3 behind a's back
  await b.sequencer.submit({ principal: p, taskId, baseRev: 3, clientId: null, seq: null, op: { title: [3, 'x'] } }) // rev 4
  const res = await a.sequencer.submit({ principal: p, taskId, baseRev: 2, clientId: null, seq: null, op: { title: [4, 'Z'] } })
  t.equal(res.rev, 5)
  t.equal(res.snapshot.title, '21axbcZ', 'transformed against the two ops a had not seen')
  t.equal(a.sequencer.commitStats.lostRaces, 1, 'the first attempt lost, the locked retry committed')
  const { content, revs } = await replay(a.store, orgId, taskId)
  t.same(revs, [1, 2, 3, 4, 5])
  t.same(content, contentOf(res.snapshot))
  // b's cache is behind now: its next commit with a current baseRev also goes through.
  const res2 = await b.sequencer.submit({ principal: p, taskId, baseRev: 5, clientId: null, seq: null, op: { priority: { set: 4 } } })
  t.equal(res2.rev, 6)
  t.equal(res2.snapshot.title, '21axbcZ')
})

t.test('simultaneous commits to one task on both instances never share a rev', async (t) => {
  const a = await instance(t, url, hub)
  const b = await instance(t, url, hub)
  const orgId = randomUUID()
  const p = principal(orgId)
  const taskId = randomUUID()
  await a.sequencer.create({ principal: p, taskId, clientId: null, seq: null, init: {} })
  await b.sequencer.snapshot(orgId, taskId)
  const results = await Promise.all(
    Array.from({ length: 20 }, (_, i) =>
      (i % 2 ? a : b).sequencer.submit({ principal: p, taskId, baseRev: 1, clientId: null, seq: null, op: { description: [String(i % 10)] } }),
    ),
  )
  const revs = results.map((r) => r.rev).sort((x, y) => x - y)
  t.same(revs, Array.from({ length: 20 }, (_, i) => i + 2))
  const { content } = await replay(a.store, orgId, taskId)
  t.equal(content.description.length, 20, 'every insert kept')
})
