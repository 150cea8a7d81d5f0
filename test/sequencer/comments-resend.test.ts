/**
 * Two resends of the same comment mutation (same clientId and seq) racing, as a
 * socket message and a REST push of one client may: both pass the resend check
 * before either writes. The loser must get the original answer as a duplicate,
 * not the refusal its own write meets (`already_exists`, or `not_found` for a
 * delete). The race is forced: a separate transaction holds the comments table
 * until both calls wait on it, then lets them write together.
 */
import t, { type Test } from 'tap'
import { randomUUID } from 'node:crypto'
import postgres from 'postgres'
import { sql } from 'drizzle-orm'
import { MemoryHub } from '../../src/bus/memory.js'
import { openDatabase } from '../../src/storage/index.js'
import { CommentService } from '../../src/comments/service.js'
import type { CommentResult } from '../../src/comments/types.js'
import { createTestDatabaseUrl } from '../helpers/db.js'
import { instance, principal } from './helpers.js'

const url = await createTestDatabaseUrl(t)
await (await openDatabase({ databaseUrl: url, dataDir: '/tmp', poolSize: 1 })).close()
const hub = new MemoryHub()

async function service(t: Test) {
  const i = await instance(t, url, hub)
  const comments = new CommentService({
    store: i.store,
    bus: i.bus,
    instanceId: `c-${randomUUID()}`,
    bodyMax: 1000,
    bindClient: (principal, clientId) => i.sequencer.bindClient(principal, clientId),
  })
  t.teardown(() => comments.drain())
  return { ...i, comments }
}

/**
 * Runs `calls` while another transaction holds the comments table against writes
 * (reads go on), and lets them write only once `waiters` of them wait for it.
 */
async function together<T>(t: Test, waiters: number, calls: () => Promise<T>[]): Promise<PromiseSettledResult<T>[]> {
  const pg = postgres(url, { max: 2, onnotice: () => {} })
  t.teardown(() => pg.end())
  let running: Promise<PromiseSettledResult<T>[]> | undefined
  await pg.begin(async (tx) => {
    await tx`lock table comments in exclusive mode`
    running = Promise.allSettled(calls())
    const deadline = Date.now() + 20_000
    for (;;) {
      const [{ n }] = await pg`select count(*)::int as n from pg_locks where relation = 'comments'::regclass and not granted`
      if (n >= waiters) break
      if (Date.now() > deadline) throw new Error(`only ${n} of ${waiters} writers reached the lock`)
      await new Promise((r) => setTimeout(r, 20))
    }
  })
  return running!
}

const values = (settled: PromiseSettledResult<CommentResult>[]) =>
  settled.map((s) => {
    if (s.status === 'rejected') throw s.reason
    return s.value
  })

t.test('two concurrent resends of a comment create on two instances: both succeed, one is the duplicate', async (t) => {
  const a = await service(t)
  const b = await service(t)
  const orgId = randomUUID()
  const me = principal(orgId)
  const taskId = randomUUID()
  await a.sequencer.create({ principal: me, taskId, clientId: null, seq: null, init: { title: 'task' } })
  const clientId = randomUUID()
  const commentId = randomUUID()
  const req = { principal: me, taskId, commentId, body: 'hello', clientId, seq: 1 }

  const [x, y] = values(await together(t, 2, () => [a.comments.create(req), b.comments.create(req)]))
  t.same([x.duplicate, y.duplicate].sort(), [false, true], 'one committed, the other is answered as its resend')
  t.same(x.comment, y.comment, 'both answer the same comment')
  t.equal(x.comment.body, 'hello')
  const rows = await a.database.rows<{ n: number }>(sql`select count(*)::int as n from comments where org_id = ${orgId}::uuid`)
  t.equal(rows[0].n, 1, 'one comment row')
  const recs = await a.database.rows<{ n: number }>(sql`select count(*)::int as n from client_mutations where client_id = ${clientId}::uuid`)
  t.equal(recs[0].n, 1, 'one (clientId, seq) record')

  // A different client reusing the commentId is still refused: the re-check only answers the same (clientId, seq).
  await t.rejects(a.comments.create({ ...req, clientId: randomUUID() }), { code: 'already_exists' })
})

t.test('two concurrent resends of a comment delete on one instance: both succeed, one is the duplicate', async (t) => {
  const a = await service(t)
  const orgId = randomUUID()
  const me = principal(orgId)
  const taskId = randomUUID()
  await a.sequencer.create({ principal: me, taskId, clientId: null, seq: null, init: { title: 'task' } })
  const clientId = randomUUID()
  const commentId = randomUUID()
  await a.comments.create({ principal: me, taskId, commentId, body: 'bye', clientId, seq: 1 })
  const req = { principal: me, taskId, commentId, clientId, seq: 2 }

  const [x, y] = values(await together(t, 2, () => [a.comments.delete(req), a.comments.delete(req)]))
  t.same([x.duplicate, y.duplicate].sort(), [false, true])
  t.ok(x.comment.deleted && y.comment.deleted, 'both answer the tombstone')
  const tombs = await a.database.rows<{ n: number }>(sql`select count(*)::int as n from tombstones where org_id = ${orgId}::uuid and id = ${commentId}::uuid`)
  t.equal(tombs[0].n, 1)
})
