/**
 * CPU of turning one pull page into JSON: the route's schema serializer (what
 * fastify compiles from PullAnswer, a union at the root) against JSON.stringify of
 * the schema-ordered page, on the same 1,000 tasks (or --tasks). CPU time of this
 * process (process.cpuUsage), median of --rounds, so a busy box skews it less than
 * wall time; also checks the two give the same JSON.
 *
 *   npx tsx load/pull-serialize-bench.ts [--tasks 1000] [--rounds 9]
 */
import { randomUUID } from 'node:crypto'
import { parseArgs } from 'node:util'
import { SerializerSelector } from '@fastify/fast-json-stringify-compiler'
import { PullAnswer } from '../src/http/sync-schemas.js'
import { toSnapshot } from '../src/domain/snapshot.js'

const { values } = parseArgs({ options: { tasks: { type: 'string', default: '1000' }, rounds: { type: 'string', default: '9' } } })
const n = Number(values.tasks)
const rounds = Number(values.rounds)
const at = new Date().toISOString()
const user = randomUUID()
const page = {
  tasks: Array.from({ length: n }, (_, i) =>
    toSnapshot(
      {
        title: `task ${i} with a title of ordinary length`,
        description: 'A description: '.repeat(20),
        status: 'todo',
        priority: i % 5,
        tags: ['alpha', 'beta'],
        assigneeId: user,
        dueAt: null,
        projectId: randomUUID(),
        customFields: { estimate: 3, lt: { set: 1 } },
        deleted: false,
      },
      { id: randomUUID(), rev: 4, clock: { [randomUUID()]: 4 }, createdAt: at, updatedAt: at, updatedBy: user },
    ),
  ),
  comments: [],
  tombstones: [],
  cursor: 'c'.repeat(60),
  hasMore: true,
  lastSeq: { [randomUUID()]: 12 },
}
const schemaSerializer = SerializerSelector()()({ schema: PullAnswer, method: 'GET', url: '/api/sync/pull', httpStatus: '200' }) as (x: unknown) => string
if (schemaSerializer(page) !== JSON.stringify(page)) throw new Error('the two serializations differ')

function cpuMs(fn: () => void): number {
  const times: number[] = []
  for (let r = 0; r < rounds; r++) {
    const start = process.cpuUsage()
    fn()
    const d = process.cpuUsage(start)
    times.push((d.user + d.system) / 1000)
  }
  return times.sort((a, b) => a - b)[Math.floor(times.length / 2)]
}
cpuMs(() => schemaSerializer(page))
cpuMs(() => JSON.stringify(page))
const bytes = JSON.stringify(page).length
console.log(`one page of ${n} tasks (${(bytes / 1e6).toFixed(2)} MB): schema serializer ${cpuMs(() => schemaSerializer(page)).toFixed(1)} ms CPU, JSON.stringify ${cpuMs(() => JSON.stringify(page)).toFixed(1)} ms CPU (medians of ${rounds}); identical output`)
