/** The same commit statements run on embedded PGlite (the single-instance mode without DATABASE_URL). */
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { MemoryBus } from '../../src/bus/memory.js'
import { DEFAULT_LIMITS } from '../../src/domain/index.js'
import { TaskSequencer } from '../../src/sequencer/index.js'
import { openDatabase } from '../../src/storage/index.js'
import { postgresTaskStore } from '../../src/storage/postgres-task-store.js'
import { contentOf, principal, replay } from './helpers.js'

t.test('create, transform, duplicates, delete and replay on PGlite', async (t) => {
  const database = await openDatabase({ dataDir: 'memory://' })
  const bus = new MemoryBus('pglite')
  const store = postgresTaskStore(database)
  const sequencer = new TaskSequencer({ store, bus, limits: DEFAULT_LIMITS, instanceId: 'pglite', replayWindow: 100 })
  t.teardown(async () => {
    await sequencer.drain()
    await bus.close()
    await database.close()
  })
  const p = principal(randomUUID())
  const taskId = randomUUID()
  const clientId = randomUUID()
  await sequencer.create({ principal: p, taskId, clientId, seq: 1, init: { title: 'ab' } })
  const results = await Promise.all([
    sequencer.submit({ principal: p, taskId, baseRev: 1, clientId, seq: 2, op: { title: ['<'] } }),
    sequencer.submit({ principal: p, taskId, baseRev: 1, clientId, seq: 3, op: { title: [2, '>'] } }),
  ])
  t.same(results.map((r) => r.rev), [2, 3])
  t.equal(results[1].snapshot.title, '<ab>')
  const dup = await sequencer.submit({ principal: p, taskId, baseRev: 1, clientId, seq: 2, op: { title: ['<'] } })
  t.same([dup.rev, dup.duplicate], [2, true])
  const del = await sequencer.submit({ principal: p, taskId, baseRev: 3, clientId: null, seq: null, op: { delete: true } })
  t.equal(del.snapshot.deleted, true)
  const { content, revs } = await replay(store, p.orgId, taskId)
  t.same(revs, [1, 2, 3, 4])
  t.same(content, contentOf(del.snapshot))
})
