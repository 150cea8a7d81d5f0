/**
 * What a hot task's chain costs PostgreSQL per rev: one task written by `--writers`
 * writers (each stamps its own custom field, as load/sdk-worker.ts does: the task
 * holds one custom field per writer), committed as chains of `--chain` consecutive
 * revs per statement through the commit statement (`commitOpsStatement`, named
 * prepared, on one connection). Two payloads in turns on the same task and
 * connection: `last-rev` (what tasks-commit.ts sends: the snapshot once, with the
 * chain's last rev) and `every-rev` (every rev's snapshot sent too, as before
 * branch hot2). The figure is the backend's CPU (/proc schedstat) per committed rev,
 * beside the parameter's size.
 *
 *   npx tsx load/chain-commit-bench.ts [--writers 50] [--chain 8] [--statements 200] [--rounds 5]
 *   env BENCH_PG_URL (admin URL, default postgres://postgres@127.0.0.1:5432/postgres)
 */
import { randomBytes, randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { parseArgs } from 'node:util'
import postgres from 'postgres'
import { sql } from 'drizzle-orm'
import { PgDialect } from 'drizzle-orm/pg-core'
import { contentFromInit, DEFAULT_LIMITS, historyChanges, increment, taskType, type TaskContent, type TaskOp } from '../src/domain/index.js'
import { mutationDigest } from '../src/sequencer/digest.js'
import { openDatabase } from '../src/storage/index.js'
import { commitCreate, commitOpsStatement } from '../src/storage/tasks-commit.js'
import type { CommitRow } from '../src/storage/task-store.js'

const { values } = parseArgs({
  options: {
    writers: { type: 'string', default: '50' },
    chain: { type: 'string', default: '8' },
    statements: { type: 'string', default: '200' },
    rounds: { type: 'string', default: '5' },
  },
})
const WRITERS = Number(values.writers)
const CHAIN = Number(values.chain)
const STATEMENTS = Number(values.statements)
const ROUNDS = Number(values.rounds)
const VARIANTS = ['last-rev', 'every-rev'] as const
type Variant = (typeof VARIANTS)[number]

const cpuSeconds = (pid: number) => Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]) / 1e9
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

const adminUrl = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'
const admin = postgres(adminUrl, { max: 1, onnotice: () => {} })
const dbName = `tasksync_chain_${randomBytes(4).toString('hex')}`
await admin.unsafe(`create database ${dbName}`)
const url = new URL(adminUrl)
url.pathname = '/' + dbName
const database = await openDatabase({ databaseUrl: url.toString(), dataDir: '/tmp', poolSize: 1 })
const client = (database.db as unknown as { $client: { unsafe: (q: string, p: unknown[], o: object) => Promise<{ r: string }[]> } }).$client
const dialect = new PgDialect()

const orgId = randomUUID()
const taskId = randomUUID()
const writers = Array.from({ length: WRITERS }, () => ({ userId: randomUUID(), deviceId: randomUUID(), clientId: randomUUID(), seq: 0 }))
const fields = Object.fromEntries(writers.map((w) => [`lt_${w.clientId.slice(0, 8)}`, 1_765_000_000_000.5]))
let content: TaskContent = contentFromInit({ title: 'x'.repeat(20), customFields: fields }, DEFAULT_LIMITS)
let clock: Record<string, number> = {}
let rev = 1
let turn = 0

try {
  await database.rows(sql`insert into organizations (id, name) values (${orgId}::uuid, 'bench')`)
  const w0 = writers[0]
  clock = increment({}, w0.deviceId)
  const created = await commitCreate(database, {
    orgId, taskId, prevRev: 0, rev: 1, content, clock, at: new Date().toISOString(), userId: w0.userId, deviceId: w0.deviceId,
    clientId: null, seq: null, digest: null, op: {} as TaskOp, changes: historyChanges(taskType.create(), content), conflicts: [], tombstone: false,
  })
  if (created.kind !== 'committed') throw new Error(`create: ${created.kind}`)
  const [{ pid }] = await database.rows<{ pid: number }>(sql`select pg_backend_pid() as pid`)

  /** The next rev: the hot scenario's op (a title character in or out around 40, the writer's own stamp). */
  const nextRow = (): CommitRow => {
    const w = writers[turn++ % WRITERS]
    const len = [...content.title].length
    const pos = (turn * 7919) % (len + 1)
    const title = len < 40 ? (pos > 0 ? [pos, 'x'] : ['x']) : pos < len ? (pos > 0 ? [pos, { d: 1 }] : [{ d: 1 }]) : [{ d: 1 }]
    const op = taskType.normalize({ title, customFields: { [`lt_${w.clientId.slice(0, 8)}`]: { set: 1_765_000_000_000 + turn + 0.5 } } } as TaskOp)
    const next = taskType.apply(content, op)
    const row: CommitRow = {
      orgId, taskId, prevRev: rev, rev: rev + 1, content: next, clock: increment(clock, w.deviceId), at: new Date().toISOString(),
      userId: w.userId, deviceId: w.deviceId, clientId: w.clientId, seq: ++w.seq, digest: mutationDigest({ kind: 'op', taskId, op }),
      op, changes: historyChanges(content, next), conflicts: [], tombstone: false,
    }
    rev = row.rev
    content = next
    clock = row.clock
    return row
  }

  /** `every-rev`: the parameter with every rev's snapshot fields filled in, as main sent it. */
  const everyRev = (param: string, rows: CommitRow[]): string =>
    JSON.stringify(
      (JSON.parse(param) as Record<string, unknown>[]).map((r, i) => {
        const c = rows[i].content
        return { ...r, content: c, clock: rows[i].clock, project_id: c.projectId, status: c.status, priority: c.priority, assignee_id: c.assigneeId, deleted: c.deleted }
      }),
    )

  const round = async (variant: Variant): Promise<number> => {
    const before = cpuSeconds(Number(pid))
    for (let s = 0; s < STATEMENTS; s++) {
      const rows = Array.from({ length: CHAIN }, nextRow)
      const q = dialect.sqlToQuery(commitOpsStatement(rows))
      if (variant === 'every-rev') q.params[0] = everyRev(q.params[0] as string, rows)
      const ok = (await client.unsafe(q.sql, q.params as unknown[], { prepare: true })).filter((r) => r.r === 'ok').length
      if (ok !== 1) throw new Error(`${variant}: the chain was not committed`)
    }
    return ((cpuSeconds(Number(pid)) - before) * 1000) / (STATEMENTS * CHAIN)
  }

  for (const v of VARIANTS) await round(v) // warm-up: prepares the statement, fills the caches
  const samples: Record<Variant, number[]> = { 'last-rev': [], 'every-rev': [] }
  const loads: string[] = []
  for (let r = 0; r < ROUNDS; r++) {
    for (const v of r % 2 ? [...VARIANTS].reverse() : VARIANTS) samples[v].push(await round(v))
    loads.push(loadavg()[0].toFixed(1))
  }
  const bytes = (v: Variant) => {
    const rows = Array.from({ length: CHAIN }, nextRow)
    const p = dialect.sqlToQuery(commitOpsStatement(rows)).params[0] as string
    return (v === 'every-rev' ? everyRev(p, rows) : p).length
  }
  console.log(`chain commit: 1 task, ${WRITERS} writers (${WRITERS} custom fields), chains of ${CHAIN} revs, ${ROUNDS} rounds × ${STATEMENTS} statements; load average ${loads.join(', ')}`)
  console.log('payload     PostgreSQL core-ms/rev (median)  parameter bytes/chain  samples (core-ms/rev)')
  for (const v of VARIANTS) {
    const pg = median(samples[v])
    console.log(`${v.padEnd(11)} ${pg.toFixed(3).padStart(10)}                       ${String(bytes(v)).padStart(8)}            ${samples[v].map((x) => x.toFixed(3)).join(' ')}`)
  }
} finally {
  await database.close()
  await admin.unsafe(`drop database if exists ${dbName} with (force)`)
  await admin.end()
}
