/**
 * Live ops while devices catch up, through the TaskSequencer directly (no sockets,
 * no generator processes): on a fresh PostgreSQL database, `--live` tasks with one
 * writer each (one op in flight: submit, wait for the ack, submit the next) run
 * throughout; `--away` tasks are first advanced by `--day` revs each; then
 * `--devices` devices per away task all submit `--edits` edits each, one after the
 * other, based on rev 1 (far behind: transformed against the day's ops, their
 * conflicts recorded). Prints the live acks' latency during the catch-up (from
 * its start until its last edit is answered), before it, and how long it took.
 *
 *   npx tsx load/live-lane-bench.ts [--live 20] [--away 60] [--day 200] [--devices 10] [--edits 3]
 *   env BENCH_PG_URL (admin URL, default postgres://postgres@127.0.0.1:5432/postgres)
 */
import { randomBytes, randomUUID } from 'node:crypto'
import { loadavg } from 'node:os'
import { parseArgs } from 'node:util'
import postgres from 'postgres'
import { MemoryBus } from '../src/bus/memory.js'
import { DEFAULT_LIMITS } from '../src/domain/index.js'
import { TaskSequencer } from '../src/sequencer/index.js'
import type { Principal } from '../src/auth/principal.js'
import { openDatabase } from '../src/storage/index.js'
import { postgresTaskStore } from '../src/storage/postgres-task-store.js'

const { values } = parseArgs({
  options: {
    live: { type: 'string', default: '20' },
    away: { type: 'string', default: '60' },
    day: { type: 'string', default: '200' },
    devices: { type: 'string', default: '10' },
    edits: { type: 'string', default: '3' },
  },
})
const liveCount = Number(values.live)
const awayCount = Number(values.away)
const dayRevs = Number(values.day)
const devicesPerTask = Number(values.devices)
const edits = Number(values.edits)
const adminUrl = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'

const dbName = `tasksync_bench_${randomBytes(4).toString('hex')}`
const admin = postgres(adminUrl, { max: 1, onnotice: () => {} })
await admin.unsafe(`create database ${dbName}`)
const url = new URL(adminUrl)
url.pathname = '/' + dbName
const database = await openDatabase({ databaseUrl: url.toString(), dataDir: '/tmp', poolSize: 10 })
const bus = new MemoryBus('bench')
const sequencer = new TaskSequencer({
  store: postgresTaskStore(database),
  bus,
  limits: DEFAULT_LIMITS,
  instanceId: 'bench',
  replayWindow: 1000,
  logger: { warn: (o, m) => console.warn(m, o), error: (o, m) => console.error(m, o) },
})
const orgId = randomUUID()
const principal = (): Principal => ({ orgId, userId: randomUUID(), deviceId: randomUUID(), role: 'member' })
const owner = principal()
const liveTasks = Array.from({ length: liveCount }, () => randomUUID())
const awayTasks = Array.from({ length: awayCount }, () => randomUUID())
for (const taskId of [...liveTasks, ...awayTasks]) await sequencer.create({ principal: owner, taskId, clientId: null, seq: null, init: { title: '' } })

console.log(`${liveCount + awayCount} tasks created`)
// The day: every away task advanced by dayRevs (title appends and priority sets, so catch-up edits conflict).
await Promise.all(
  awayTasks.map(async (taskId) => {
    let len = 0
    for (let rev = 1; rev <= dayRevs; rev++) {
      const op = rev % 5 === 0 ? { priority: { set: rev % 4 } } : { title: len === 0 ? ['d'] : [len, 'd'] }
      if (rev % 5 !== 0) len++
      const r = await sequencer.submit({ principal: owner, taskId, baseRev: rev, clientId: null, seq: null, op })
      if (r.rev !== rev + 1) throw new Error('day op out of order')
    }
  }),
)

console.log(`the day: ${awayCount} × ${dayRevs} revs committed`)
// Live writers, throughout.
type Phase = 'before' | 'during' | 'after'
let phase = 'before' as Phase
const lat: Record<Phase, number[]> = { before: [], during: [], after: [] }
let stop = false
const liveRuns = liveTasks.map(async (taskId) => {
  const who = principal()
  const clientId = randomUUID()
  let rev = 1
  for (let seq = 1; !stop; seq++) {
    const at = performance.now()
    const r = await sequencer.submit({ principal: who, taskId, baseRev: rev, clientId, seq, op: { priority: { set: seq % 4 } } })
    lat[phase].push(performance.now() - at)
    rev = r.rev
  }
})
await new Promise((r) => setTimeout(r, 2000))

console.log(`live writers: ${lat.before.length} acks before the catch-up`)
// Everyone back at once.
phase = 'during'
const started = performance.now()
let catchupAcks = 0
await Promise.all(
  awayTasks.flatMap((taskId) =>
    Array.from({ length: devicesPerTask }, async () => {
      const who = principal()
      const clientId = randomUUID()
      for (let seq = 1; seq <= edits; seq++) {
        const op = seq % 2 === 1 ? { title: ['e'] } : { priority: { set: 3 } }
        await sequencer.submit({ principal: who, taskId, baseRev: seq, clientId, seq, op })
        catchupAcks++
      }
    }),
  ),
)
const catchupMs = performance.now() - started
phase = 'after'
await new Promise((r) => setTimeout(r, 1000))
stop = true
await Promise.all(liveRuns)

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]
}
const row = (name: string, xs: number[]) =>
  `${name.padEnd(8)} ${String(xs.length).padStart(6)} acks  p50 ${pct(xs, 50).toFixed(1)}  p99 ${pct(xs, 99).toFixed(1)}  max ${pct(xs, 100).toFixed(1)} ms`
const stats = sequencer.commitStats
console.log(`load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`)
console.log(`catch-up: ${catchupAcks} edits of ${awayCount * devicesPerTask} devices, ${dayRevs} revs behind, answered in ${(catchupMs / 1000).toFixed(2)} s`)
console.log(`live acks (${liveCount} writers):`)
console.log(row('before', lat.before))
console.log(row('during', lat.during))
console.log(row('after', lat.after))
console.log(`commits: ${stats.statements} statements, ${stats.rows} rows, mean queued ${(stats.queuedMs / stats.rows).toFixed(1)} ms, mean statement ${(stats.statementMs / stats.statements).toFixed(1)} ms`)
console.log(JSON.stringify({ catchupS: catchupMs / 1000, liveDuringP50: pct(lat.during, 50), liveDuringP99: pct(lat.during, 99), liveDuringN: lat.during.length, load1: loadavg()[0] }))

await sequencer.drain()
await bus.close()
await database.close()
await admin.unsafe(`drop database ${dbName} with (force)`)
await admin.end()
