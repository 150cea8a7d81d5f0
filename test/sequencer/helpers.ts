/**
 * Sequencer test fixtures: sequencers on the in-memory task store (unit tests) or
 * on a real PostgreSQL database (integration), principals, and the replay of the
 * op log checked against the stored snapshot.
 */
import { randomUUID } from 'node:crypto'
import { MemoryBus, MemoryHub } from '../../src/bus/memory.js'
import { DEFAULT_LIMITS, makeTaskType, type TaskContent, type TaskLimits } from '../../src/domain/index.js'
import { contentOf } from '../../src/domain/snapshot.js'
import type { Principal } from '../../src/auth/principal.js'
import { TaskSequencer, type SequencerOptions } from '../../src/sequencer/index.js'
import { openDatabase, type Database } from '../../src/storage/index.js'
import { postgresTaskStore } from '../../src/storage/postgres-task-store.js'
import type { MemoryTaskStore } from '../../src/storage/memory-task-store.js'
import type { TaskStore } from '../../src/storage/task-store.js'
import type { Teardown } from '../helpers/teardown.js'

type Options = Partial<Omit<SequencerOptions, 'store'>> & { limits?: TaskLimits }

export function principal(orgId: string, role: Principal['role'] = 'member'): Principal {
  return { orgId, userId: randomUUID(), deviceId: randomUUID(), role }
}

/** A sequencer ("instance") with its own bus connection on a shared in-memory store. */
export function memoryInstance(t: Teardown, store: MemoryTaskStore, hub: MemoryHub, opts: Options = {}): { sequencer: TaskSequencer; store: MemoryTaskStore; bus: MemoryBus } {
  const instanceId = `test-${randomUUID().slice(0, 8)}`
  const bus = new MemoryBus(instanceId, hub)
  const sequencer = new TaskSequencer({ store, bus, limits: DEFAULT_LIMITS, instanceId, replayWindow: 1000, ...opts })
  t.teardown(async () => {
    await sequencer.drain()
    await bus.close()
  })
  return { sequencer, store, bus }
}

/** A sequencer ("instance") with its own connection pool on the database at `url`. */
export async function instance(
  t: Teardown,
  url: string,
  hub: MemoryHub,
  opts: Options = {},
): Promise<{ sequencer: TaskSequencer; database: Database; store: TaskStore; bus: MemoryBus }> {
  const database = await openDatabase({ databaseUrl: url, dataDir: '/tmp', poolSize: 5, migrate: false })
  const store = postgresTaskStore(database)
  const instanceId = `test-${randomUUID().slice(0, 8)}`
  const bus = new MemoryBus(instanceId, hub)
  const sequencer = new TaskSequencer({ store, bus, limits: DEFAULT_LIMITS, instanceId, replayWindow: 1000, ...opts })
  t.teardown(async () => {
    await sequencer.drain()
    await bus.close()
    await database.close()
  })
  return { sequencer, database, store, bus }
}

/** Replays the task's whole op log from create() and returns the content it gives, with the revs seen. */
export async function replay(store: Pick<TaskStore, 'loadOps'>, orgId: string, taskId: string): Promise<{ content: TaskContent; revs: number[] }> {
  const type = makeTaskType(DEFAULT_LIMITS)
  const ops = await store.loadOps(orgId, taskId, 1, 1_000_000_000)
  let content = type.create()
  for (const o of ops) content = type.apply(content, o.op)
  return { content, revs: ops.map((o) => o.rev) }
}

export { contentOf }
