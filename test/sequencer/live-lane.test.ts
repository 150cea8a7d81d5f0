/**
 * The live lane: an op based at or near its task's rev commits while catch-up commits
 * (ops based more than LIVE_LAG_REVS behind) wait for their statements, and catch-up
 * statements hold at most concurrency − 1 slots. On PostgreSQL, through the real store:
 * the catch-up tasks' statements are held at a gate until the test opens it.
 */
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { MemoryBus, MemoryHub } from '../../src/bus/memory.js'
import { DEFAULT_LIMITS } from '../../src/domain/index.js'
import { TaskSequencer, type CommitResult } from '../../src/sequencer/index.js'
import { LIVE_LAG_REVS } from '../../src/sequencer/sequencer.js'
import { TaskSyncError } from '../../src/protocol/errors.js'
import { openDatabase } from '../../src/storage/index.js'
import { postgresTaskStore } from '../../src/storage/postgres-task-store.js'
import type { CommitOutcome, CommitRow, TaskStore } from '../../src/storage/task-store.js'
import { createTestDatabaseUrl } from '../helpers/db.js'
import { principal, replay } from './helpers.js'
import type { Teardown } from '../helpers/teardown.js'

const url = await createTestDatabaseUrl(t)
await (await openDatabase({ databaseUrl: url, dataDir: '/tmp', poolSize: 1 })).close()

/** The PostgreSQL store, with statements touching `held` tasks waiting at a gate, and its op log reads counted. */
async function gatedInstance(t: Teardown, opts: { replayWindow?: number } = {}) {
  const database = await openDatabase({ databaseUrl: url, dataDir: '/tmp', poolSize: 5, migrate: false })
  const real = postgresTaskStore(database)
  const held = new Set<string>()
  let open!: () => void
  let gate = new Promise<void>((resolve) => (open = resolve))
  const gated = { waiting: 0, most: 0, opsRead: 0 }
  const store: TaskStore = Object.assign(Object.create(real) as TaskStore, {
    async commitOps(rows: CommitRow[]): Promise<CommitOutcome[]> {
      if (rows.some((r) => held.has(r.taskId))) {
        gated.waiting++
        gated.most = Math.max(gated.most, gated.waiting)
        await gate
        gated.waiting--
      }
      return real.commitOps(rows)
    },
    loadOps(...args: Parameters<TaskStore['loadOps']>) {
      gated.opsRead++
      return real.loadOps(...args)
    },
  })
  const instanceId = `test-${randomUUID().slice(0, 8)}`
  const bus = new MemoryBus(instanceId, new MemoryHub())
  const sequencer = new TaskSequencer({ store, bus, limits: DEFAULT_LIMITS, instanceId, replayWindow: opts.replayWindow ?? 1000 })
  t.teardown(async () => {
    open()
    await sequencer.drain()
    await bus.close()
    await database.close()
  })
  const release = () => {
    open()
    gate = Promise.resolve()
  }
  return { sequencer, store: real, held, gated, release }
}

t.test('a live op commits while catch-up commits wait for their statements; catch-up holds one of the two slots', async (t) => {
  const { sequencer, store, held, gated, release } = await gatedInstance(t)
  t.equal(store.commitConcurrency, 2, 'PostgreSQL commits with two statements in flight')
  const orgId = randomUUID()
  const me = principal(orgId)
  const behind = LIVE_LAG_REVS + 6
  // Three tasks far ahead of a device that was away, and one live task.
  const away = [randomUUID(), randomUUID(), randomUUID()]
  const live = randomUUID()
  for (const taskId of [...away, live]) await sequencer.create({ principal: me, taskId, clientId: null, seq: null, init: { title: '' } })
  await Promise.all(
    away.map(async (taskId) => {
      for (let rev = 1; rev <= behind; rev++) await sequencer.submit({ principal: me, taskId, baseRev: rev, clientId: null, seq: null, op: { title: append(rev - 1, 'x') } })
    }),
  )
  for (const taskId of away) held.add(taskId)
  const device = principal(orgId)
  const deviceClient = randomUUID()
  // The device's queued edits, based on rev 1: far behind, so catch-up.
  const catchups = away.map((taskId, i) => sequencer.submit({ principal: device, taskId, baseRev: 1, clientId: deviceClient, seq: i + 1, op: { priority: { set: 2 } } }))
  let caughtUp = false
  void Promise.allSettled(catchups).then(() => (caughtUp = true))
  await waitFor(() => gated.waiting === 1)
  const writer = principal(orgId)
  const liveClient = randomUUID()
  let rev = 1
  for (let seq = 1; seq <= 3; seq++) {
    const r = await within(sequencer.submit({ principal: writer, taskId: live, baseRev: rev, clientId: liveClient, seq, op: { title: append(rev - 1, 'L') } }), 10_000)
    t.equal(r.rev, rev + 1, `live op ${seq} committed at rev ${rev + 1} while the catch-up statements wait`)
    rev = r.rev
  }
  t.equal(caughtUp, false, 'the catch-up commits are still waiting')
  t.equal(gated.most, 1, 'one catch-up statement in flight at a time: the other slot stays free for live commits')
  release()
  const results: CommitResult[] = await Promise.all(catchups)
  for (const [i, r] of results.entries()) {
    t.equal(r.rev, behind + 2, `catch-up edit ${i + 1} committed after the ${behind} ops it was behind`)
    t.equal(r.snapshot.priority, 2)
    const { revs, content } = await replay(store, orgId, away[i])
    t.same(revs, Array.from({ length: behind + 2 }, (_, k) => k + 1), 'its op log is gap-free')
    t.equal(content.title, 'x'.repeat(behind), 'the day\'s edits are all there')
    t.equal(content.priority, 2, 'and the device\'s edit')
  }
  const { revs } = await replay(store, orgId, live)
  t.same(revs, [1, 2, 3, 4], 'the live task is gap-free')
  t.ok(sequencer.commitStats.catchupRows >= 3, 'the catch-up rows were counted in their lane')
})

t.test('ops past the replay window queued together are refused without reading the op log; the ones within it commit', async (t) => {
  const { sequencer, store, gated } = await gatedInstance(t, { replayWindow: 10 })
  const orgId = randomUUID()
  const me = principal(orgId)
  const taskId = randomUUID()
  await sequencer.create({ principal: me, taskId, clientId: null, seq: null, init: { title: '' } })
  for (let rev = 1; rev <= 40; rev++) await sequencer.submit({ principal: me, taskId, baseRev: rev, clientId: null, seq: null, op: { title: append(rev - 1, 'x') } })
  sequencer['hot'].forget(orgId, taskId)
  const readsBefore = gated.opsRead
  const device = principal(orgId)
  const clientId = randomUUID()
  // Two edits past the window (rev 41, window 10), queued together, then one within it.
  const settled = await Promise.allSettled([
    sequencer.submit({ principal: device, taskId, baseRev: 2, clientId, seq: 1, op: { priority: { set: 1 } } }),
    sequencer.submit({ principal: device, taskId, baseRev: 3, clientId, seq: 2, op: { priority: { set: 2 } } }),
    sequencer.submit({ principal: device, taskId, baseRev: 41, clientId, seq: 3, op: { priority: { set: 3 } } }),
  ])
  for (const s of settled.slice(0, 2)) t.ok(s.status === 'rejected' && s.reason instanceof TaskSyncError && s.reason.code === 'rev_too_old', 'past the window: rev_too_old')
  t.match(settled[2], { status: 'fulfilled', value: { rev: 42 } }, 'the edit within the window commits')
  t.equal(gated.opsRead - readsBefore, 0, 'the op log was not read for the refused edits')
  t.equal(await store.findMutation(orgId, clientId, 1), null, 'nothing recorded for a refused edit')
  const { revs } = await replay(store, orgId, taskId)
  t.same(revs, Array.from({ length: 42 }, (_, k) => k + 1), 'gap-free')
})

/** A text op inserting `s` after `len` characters. */
const append = (len: number, s: string) => (len === 0 ? [s] : [len, s])

async function waitFor(cond: () => boolean, ms = 10_000): Promise<void> {
  const until = Date.now() + ms
  while (!cond()) {
    if (Date.now() > until) throw new Error('timed out waiting')
    await new Promise((r) => setTimeout(r, 5))
  }
}

function within<T>(p: Promise<T>, ms: number): Promise<T> {
  return Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`not answered within ${ms} ms`)), ms).unref())])
}
