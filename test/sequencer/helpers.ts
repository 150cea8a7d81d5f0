/**
 * Sequencer test fixtures: sequencers on a real PostgreSQL database, principals,
 * and checks of the op log against the stored snapshot.
 */
import { randomUUID } from 'node:crypto'
import { sql } from 'drizzle-orm'
import { MemoryBus, MemoryHub } from '../../src/bus/memory.js'
import { DEFAULT_LIMITS, makeTaskType, type TaskContent, type TaskLimits } from '../../src/domain/index.js'
import { TaskSequencer, type Principal, type SequencerOptions } from '../../src/sequencer/index.js'
import { openDatabase, type Database } from '../../src/storage/index.js'
import { contentOf } from '../../src/sequencer/hot-tasks.js'

interface Teardown {
  teardown(fn: () => unknown): void
}

export function principal(orgId: string, role: Principal['role'] = 'member'): Principal {
  return { orgId, userId: randomUUID(), deviceId: randomUUID(), role }
}

/** A sequencer ("instance") with its own connection pool on the database at `url`. */
export async function instance(
  t: Teardown,
  url: string,
  hub: MemoryHub,
  opts: Partial<SequencerOptions> & { limits?: TaskLimits } = {},
): Promise<{ sequencer: TaskSequencer; database: Database; bus: MemoryBus }> {
  const database = await openDatabase({ databaseUrl: url, dataDir: '/tmp', poolSize: 5, migrate: false })
  const instanceId = `test-${randomUUID().slice(0, 8)}`
  const bus = new MemoryBus(instanceId, hub)
  const sequencer = new TaskSequencer({ database, bus, limits: DEFAULT_LIMITS, instanceId, replayWindow: 1000, ...opts })
  t.teardown(async () => {
    await sequencer.drain()
    await bus.close()
    await database.close()
  })
  return { sequencer, database, bus }
}

/** Replays the task's whole op log from create() and returns the content it gives, with the revs seen. */
export async function replay(database: Database, orgId: string, taskId: string): Promise<{ content: TaskContent; revs: number[] }> {
  const type = makeTaskType(DEFAULT_LIMITS)
  const rows = await database.rows<{ rev: number; op: never }>(
    sql`select rev, op from task_ops where org_id = ${orgId}::uuid and task_id = ${taskId}::uuid order by rev`,
  )
  let content = type.create()
  for (const r of rows) content = type.apply(content, r.op)
  return { content, revs: rows.map((r) => Number(r.rev)) }
}

export { contentOf }
