/**
 * Edits of devices back after more than the replay window, queued together on a task:
 * each is refused as rev_too_old without the op log being read for it (a read of a
 * window's worth of ops per queue, for nothing), and those within the window commit.
 * On PostgreSQL through the real store, its op log reads counted.
 */
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { MemoryBus, MemoryHub } from '../../src/bus/memory.js'
import { DEFAULT_LIMITS } from '../../src/domain/index.js'
import { TaskSequencer } from '../../src/sequencer/index.js'
import { TaskSyncError } from '../../src/protocol/errors.js'
import { openDatabase } from '../../src/storage/index.js'
import { postgresTaskStore } from '../../src/storage/postgres-task-store.js'
import type { TaskStore } from '../../src/storage/task-store.js'
import { createTestDatabaseUrl } from '../helpers/db.js'
import { principal, replay } from './helpers.js'
import type { Teardown } from '../helpers/teardown.js'

const url = await createTestDatabaseUrl(t)
await (await openDatabase({ databaseUrl: url, dataDir: '/tmp', poolSize: 1 })).close()

/** A sequencer on the PostgreSQL store, its op log reads counted. */
async function countingInstance(t: Teardown, replayWindow: number) {
  const database = await openDatabase({ databaseUrl: url, dataDir: '/tmp', poolSize: 5, migrate: false })
  const real = postgresTaskStore(database)
  const counted = { opsRead: 0 }
  const store: TaskStore = Object.assign(Object.create(real) as TaskStore, {
    loadOps(...args: Parameters<TaskStore['loadOps']>) {
      counted.opsRead++
      return real.loadOps(...args)
    },
  })
  const instanceId = `test-${randomUUID().slice(0, 8)}`
  const bus = new MemoryBus(instanceId, new MemoryHub())
  const sequencer = new TaskSequencer({ store, bus, limits: DEFAULT_LIMITS, instanceId, replayWindow })
  t.teardown(async () => {
    await sequencer.drain()
    await bus.close()
    await database.close()
  })
  return { sequencer, store: real, counted }
}

t.test('ops past the replay window queued together are refused without reading the op log; the ones within it commit', async (t) => {
  const { sequencer, store, counted } = await countingInstance(t, 10)
  const orgId = randomUUID()
  const me = principal(orgId)
  const taskId = randomUUID()
  await sequencer.create({ principal: me, taskId, clientId: null, seq: null, init: { title: '' } })
  for (let rev = 1; rev <= 40; rev++) await sequencer.submit({ principal: me, taskId, baseRev: rev, clientId: null, seq: null, op: { title: append(rev - 1, 'x') } })
  sequencer['hot'].forget(orgId, taskId)
  const readsBefore = counted.opsRead
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
  t.equal(counted.opsRead - readsBefore, 0, 'the op log was not read for the refused edits')
  t.equal(await store.findMutation(orgId, clientId, 1), null, 'nothing recorded for a refused edit')
  const { revs } = await replay(store, orgId, taskId)
  t.same(revs, Array.from({ length: 42 }, (_, k) => k + 1), 'gap-free')
})

/** A text op inserting `s` after `len` characters. */
const append = (len: number, s: string) => (len === 0 ? [s] : [len, s])
