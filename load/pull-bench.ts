/**
 * Pull benchmark on real PostgreSQL: seeds N tasks (with history) into a fresh
 * database, starts the real app in process, and times over HTTP
 *   - a full pull: every page from no cursor, as a new or reset device does;
 *   - a delta pull: the catch-up after 100 changes (one push of 100 ops).
 * Prints the figures; with --write-docs also writes them into docs/benchmarks.md
 * (section "Pull").
 *
 *   npx tsx load/pull-bench.ts [--tasks 10000] [--history 3] [--limit 1000] [--rounds 5] [--write-docs]
 *   env BENCH_PG_URL (admin URL, default postgres://postgres@127.0.0.1:5432/postgres)
 */
import { randomBytes, randomUUID } from 'node:crypto'
import { mkdtempSync, readFileSync, writeFileSync, existsSync } from 'node:fs'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import postgres from 'postgres'
import { sql } from 'drizzle-orm'
import { buildApp } from '../src/app.js'
import { loadConfig } from '../src/config/index.js'
import { hashPassword } from '../src/auth/passwords.js'
import { seedData } from '../src/storage/seed-data.js'

const { values } = parseArgs({
  options: {
    tasks: { type: 'string', default: '10000' },
    history: { type: 'string', default: '3' },
    limit: { type: 'string', default: '1000' },
    rounds: { type: 'string', default: '5' },
    changes: { type: 'string', default: '100' },
    'write-docs': { type: 'boolean', default: false },
  },
})
const taskCount = Number(values.tasks)
const limit = Number(values.limit)
const rounds = Number(values.rounds)
const changes = Number(values.changes)
const adminUrl = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'
// Other work on the box skews the figures; say how busy it was.
const loadAtStart = loadavg()[0]

const dbName = `tasksync_pullbench_${randomBytes(4).toString('hex')}`
const admin = postgres(adminUrl, { max: 1, onnotice: () => {} })
await admin.unsafe(`create database ${dbName}`)
const dbUrl = new URL(adminUrl)
dbUrl.pathname = '/' + dbName

const app = await buildApp(
  loadConfig({
    NODE_ENV: 'test',
    DATABASE_URL: dbUrl.toString(),
    DATA_DIR: mkdtempSync(join(tmpdir(), 'tasksync-pullbench-')),
    JWT_SECRET: randomBytes(32).toString('hex'),
    LOG_LEVEL: 'silent',
    HOUSEKEEPING_INTERVAL_S: '0',
    SCRYPT_LOG_N: '10',
    SYNC_PULL_MAX_LIMIT: String(Math.max(limit, 1000)),
  }),
)
await app.listen({ host: '127.0.0.1', port: 0 })
const address = app.server.address()
const base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`

try {
  const seedStart = performance.now()
  const [org] = await seedData(app.database, {
    orgs: 1, users: 5, projects: 10, tasks: taskCount, history: Number(values.history), comments: 0,
    hashPassword: (p) => hashPassword(p, 10),
  })
  const seedMs = performance.now() - seedStart
  await app.database.rows(sql`analyze`)
  const [{ version }] = await app.database.rows<{ version: string }>(sql`select current_setting('server_version') as version`)

  const member = org.users[2]
  const login = await post('/api/auth/login', { email: member.email, password: member.password, device: { name: 'bench', platform: 'bench' } })
  const token = login.accessToken as string

  /** One catch-up, every page; its time, pages, bytes and items. */
  async function catchUp(cursor: string | undefined) {
    const started = performance.now()
    const cpuStart = process.cpuUsage()
    let pages = 0, bytes = 0, tasks = 0, tombstones = 0
    const revs = new Map<string, number>()
    for (;;) {
      const res = await fetch(`${base}/api/sync/pull?limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`, { headers: { authorization: `Bearer ${token}` } })
      const text = await res.text()
      if (res.status !== 200) throw new Error(`pull: ${res.status} ${text}`)
      const body = JSON.parse(text)
      pages++
      bytes += text.length
      tasks += body.tasks.length
      tombstones += body.tombstones.length
      for (const task of body.tasks) revs.set(task.id, task.rev)
      cursor = body.cursor
      if (!body.hasMore) return { ms: performance.now() - started, cpuMs: cpuMsSince(cpuStart), pages, bytes, tasks, tombstones, cursor: cursor!, revs }
    }
  }

  await catchUp(undefined) // warm-up: plans, caches, JIT
  const full = []
  for (let i = 0; i < rounds; i++) full.push(await catchUp(undefined))
  if (full.some((f) => f.tasks !== taskCount)) throw new Error(`a full pull returned ${full.map((f) => f.tasks)} tasks, expected ${taskCount}`)

  const revs = full[0].revs
  let cursor = full.at(-1)!.cursor
  const clientId = randomUUID()
  let seq = 0
  const delta = []
  for (let r = 0; r < rounds; r++) {
    const ids = org.taskIds.slice(r * changes, (r + 1) * changes)
    const mutations = ids.map((taskId) => ({ seq: ++seq, kind: 'op', taskId, baseRev: revs.get(taskId)!, op: { priority: { set: (r % 4) + 1 } } }))
    const pushed = await post('/api/sync/push', { clientId, mutations }, token)
    pushed.results.forEach((x: { rev: number }, i: number) => revs.set(ids[i], x.rev))
    const d = await catchUp(cursor)
    if (d.tasks !== changes) throw new Error(`a delta pull returned ${d.tasks} tasks, expected ${changes}`)
    delta.push(d)
    cursor = d.cursor
  }

  const stats = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b)
    return { median: s[Math.floor(s.length / 2)], min: s[0], max: s.at(-1)! }
  }
  const f = stats(full.map((x) => x.ms))
  const d = stats(delta.map((x) => x.ms))
  // CPU of this process (app and HTTP client both): on a busy box, less skewed than wall time.
  const fc = stats(full.map((x) => x.cpuMs))
  const dc = stats(delta.map((x) => x.cpuMs))
  const fmt = (ms: number) => (ms >= 100 ? ms.toFixed(0) : ms.toFixed(1))
  const machine = `${cpus().length} × ${cpus()[0]?.model.trim() ?? 'cpu'}, Node ${process.version}, PostgreSQL ${version}`
  const lines = [
    `machine: ${machine} (app, client and PostgreSQL on one box; 1-min load average ${loadAtStart.toFixed(1)} at start, ${loadavg()[0].toFixed(1)} at end)`,
    `seeded ${taskCount} tasks (${Number(values.history) + 1} revs each) in ${(seedMs / 1000).toFixed(1)} s`,
    `full pull: ${full[0].pages} pages of ≤${limit}, ${(full[0].bytes / 1e6).toFixed(1)} MB of JSON — median ${fmt(f.median)} ms (min ${fmt(f.min)}, max ${fmt(f.max)}) over ${rounds} runs, ${Math.round(taskCount / (f.median / 1000))} tasks/s; process CPU median ${fmt(fc.median)} ms`,
    `delta pull after ${changes} changes: ${delta[0].pages} page, ${(delta[0].bytes / 1e3).toFixed(0)} kB — median ${fmt(d.median)} ms (min ${fmt(d.min)}, max ${fmt(d.max)}) over ${rounds} runs; process CPU median ${fmt(dc.median)} ms`,
  ]
  console.log(lines.join('\n'))
  if (values['write-docs']) writeDocs(lines)
} finally {
  await app.close()
  await admin.unsafe(`drop database if exists ${dbName} with (force)`)
  await admin.end()
}

function cpuMsSince(start: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(start)
  return (d.user + d.system) / 1000
}

async function post(path: string, body: unknown, token?: string) {
  const res = await fetch(base + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  })
  const json = await res.json()
  if (!res.ok) throw new Error(`${path}: ${res.status} ${JSON.stringify(json)}`)
  return json
}

/** Replaces the "## Pull" section of docs/benchmarks.md (other sections belong to other benchmarks). */
function writeDocs(lines: string[]): void {
  const file = new URL('../docs/benchmarks.md', import.meta.url)
  const doc = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmarks\n'
  const section = [
    '## Pull',
    '',
    'REST catch-up over HTTP against the real app (in process) on real PostgreSQL, fresh database,',
    `\`ANALYZE\` after seeding. Command: \`npx tsx load/pull-bench.ts --tasks ${taskCount} --limit ${limit} --rounds ${rounds} --write-docs\``,
    `(measured ${new Date().toISOString().slice(0, 10)}).`,
    '',
    ...lines.map((l) => `- ${l}`),
    '',
  ].join('\n')
  const start = doc.search(/^## Pull\s*$/m)
  let out: string
  if (start < 0) out = doc.replace(/\s*$/, '\n\n') + section
  else {
    const rest = doc.slice(start + 1).search(/^## /m)
    out = doc.slice(0, start) + section + (rest < 0 ? '' : '\n' + doc.slice(start + 1 + rest))
  }
  writeFileSync(file, out)
  console.log('wrote docs/benchmarks.md (section Pull)')
}
