/**
 * Drives the TaskSequencer directly (no sockets): T tasks, one writer each with
 * one op in flight (submit, wait for the ack, submit the next), for S seconds, on
 * a fresh PostgreSQL database. Prints committed ops/s, commit latency, the
 * mean group-commit batch, and the CPU of the database's PostgreSQL backends per
 * committed op (core-ms, from /proc: the figure to compare statement variants by).
 *
 *   npx tsx load/sequencer-bench.ts [--seconds 10] [--tasks 100] [--concurrency 2] [--batch 64] [--ops mix|load]
 *
 * `--ops load` sends the load harness's steady op (load/worker.ts: one title character
 * inserted or deleted around 40, plus a custom field set); `mix` (default) a typing mix.
 *   env BENCH_PG_URL (admin URL, default postgres://postgres@127.0.0.1:5432/postgres)
 */
import { randomBytes, randomUUID } from 'node:crypto'
import { loadavg } from 'node:os'
import { parseArgs } from 'node:util'
import postgres from 'postgres'
import { MemoryBus } from '../src/bus/memory.js'
import { DEFAULT_LIMITS, type TaskOp } from '../src/domain/index.js'
import { TaskSequencer } from '../src/sequencer/index.js'
import type { Principal } from '../src/auth/principal.js'
import { openDatabase } from '../src/storage/index.js'
import { cpuSeconds } from './proc.js'
import { postgresTaskStore } from '../src/storage/postgres-task-store.js'

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    tasks: { type: 'string', default: '100' },
    concurrency: { type: 'string', default: '2' },
    batch: { type: 'string', default: '64' },
    pool: { type: 'string', default: '10' },
    ops: { type: 'string', default: 'mix' },
  },
})
const seconds = Number(values.seconds)
const taskCount = Number(values.tasks)
const adminUrl = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'

const dbName = `tasksync_bench_${randomBytes(4).toString('hex')}`
const admin = postgres(adminUrl, { max: 1, onnotice: () => {} })
await admin.unsafe(`create database ${dbName}`)
const url = new URL(adminUrl)
url.pathname = '/' + dbName
const database = await openDatabase({ databaseUrl: url.toString(), dataDir: '/tmp', poolSize: Number(values.pool) })
const bus = new MemoryBus('bench')
const sequencer = new TaskSequencer({
  store: postgresTaskStore(database),
  bus,
  limits: DEFAULT_LIMITS,
  instanceId: 'bench',
  replayWindow: 1000,
  commitConcurrency: Number(values.concurrency),
  maxBatch: Number(values.batch),
  logger: { warn: (o, m) => console.warn(m, o), error: (o, m) => console.error(m, o) },
})

const orgId = randomUUID()
const writers = Array.from({ length: taskCount }, () => ({ taskId: randomUUID(), principal: principal() }))
function principal(): Principal {
  return { orgId, userId: randomUUID(), deviceId: randomUUID(), role: 'member' }
}
for (const w of writers) await sequencer.create({ principal: w.principal, taskId: w.taskId, clientId: null, seq: null, init: { title: 'bench task' } })

/** A mix like a person typing and editing fields: mostly text, some field sets. */
function nextOp(i: number, titleLength: number): TaskOp {
  if (values.ops === 'load') return loadOp(titleLength)
  switch (i % 5) {
    case 0:
      return { status: { set: (['todo', 'in_progress', 'in_review', 'done'] as const)[(i / 5) % 4 | 0] } }
    case 1:
      return { priority: { set: i % 5 } }
    default:
      return { title: titleLength > 200 ? [{ d: 50 }] : [titleLength, 'x'] }
  }
}

/** The steady scenario's op (load/worker.ts nextOp). */
function loadOp(len: number): TaskOp {
  const pos = Math.floor(Math.random() * (len + 1))
  const title = len < 40 ? (pos > 0 ? [pos, 'x'] : ['x']) : pos < len ? (pos > 0 ? [pos, { d: 1 }] : [{ d: 1 }]) : [{ d: 1 }]
  return { title, customFields: { lt: { set: Date.now() } } } as TaskOp
}

/** CPU seconds of the bench database's backends so far (pool connections are opened by then). */
async function pgCpu(): Promise<Map<number, number>> {
  const rows = await admin<{ pid: number }[]>`select pid from pg_stat_activity where datname = ${dbName}`
  return new Map(rows.map((r) => [r.pid, cpuSeconds(r.pid)]))
}

const latencies: number[] = []
let committed = 0
let stop = false
const started = performance.now()
const cpuBefore = process.cpuUsage()
const statsBefore = { ...sequencer.commitStats }
const pgBefore = await pgCpu()
setTimeout(() => {
  stop = true
}, seconds * 1000)
await Promise.all(
  writers.map(async (w) => {
    let rev = 1
    let titleLength = 'bench task'.length
    const clientId = randomUUID()
    for (let seq = 1; !stop; seq++) {
      const t0 = performance.now()
      const res = await sequencer.submit({ principal: w.principal, taskId: w.taskId, baseRev: rev, clientId, seq, op: nextOp(seq, titleLength) })
      latencies.push(performance.now() - t0)
      rev = res.rev
      titleLength = [...res.snapshot.title].length
      committed++
    }
  }),
)
const elapsed = (performance.now() - started) / 1000
const cpu = process.cpuUsage(cpuBefore)
let pgSeconds = 0
for (const [pid, end] of await pgCpu()) if (end > 0) pgSeconds += end - (pgBefore.get(pid) ?? 0)
const statements = sequencer.commitStats.statements - statsBefore.statements
const rows = sequencer.commitStats.rows - statsBefore.rows
latencies.sort((a, b) => a - b)
const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))].toFixed(1)
console.log(
  JSON.stringify({
    tasks: taskCount,
    seconds: Number(elapsed.toFixed(1)),
    commitConcurrency: Number(values.concurrency),
    maxBatch: Number(values.batch),
    committedOpsPerSec: Math.round(committed / elapsed),
    commitLatencyMs: { p50: pct(0.5), p95: pct(0.95), p99: pct(0.99) },
    meanBatch: Number((rows / Math.max(1, statements)).toFixed(1)),
    meanStatementMs: Number(((sequencer.commitStats.statementMs - statsBefore.statementMs) / Math.max(1, statements)).toFixed(1)),
    /** CPU of this (Node) process as a share of one core. */
    nodeCpu: Number(((cpu.user + cpu.system) / 1e6 / elapsed).toFixed(2)),
    /** Core-ms of the database's PostgreSQL backends per committed op. */
    postgresCoreMsPerOp: Number(((pgSeconds * 1000) / Math.max(1, committed)).toFixed(3)),
    loadAverage: Number(loadavg()[0].toFixed(2)),
  }),
)

await sequencer.drain()
await bus.close()
await database.close()
await admin.unsafe(`drop database if exists ${dbName} with (force)`)
await admin.end()
