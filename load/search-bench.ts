/**
 * Search benchmark on real PostgreSQL: seeds N tasks with text of a realistic
 * shape (a vocabulary of a few thousand words in a Zipf distribution, titles of
 * 3–8 words, descriptions of 10–60, plus a few product words), starts the real
 * app in process, and times 20 typical queries of GET /api/tasks?q= over HTTP
 * (a page of 50 with snippets): single words common and rare, phrases,
 * exclusions, `or`, combined with filters, and a second page.
 *
 *   npx tsx load/search-bench.ts [--tasks 100000] [--rounds 10] [--write-docs]
 *   env BENCH_PG_URL (admin URL, default postgres://postgres@127.0.0.1:5432/postgres)
 */
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import postgres from 'postgres'
import { sql } from 'drizzle-orm'
import { buildApp } from '../src/app.js'
import { loadConfig } from '../src/config/index.js'
import { hashPassword } from '../src/auth/passwords.js'
import { seedData } from '../src/storage/seed-data.js'
import { searchTasks } from '../src/storage/task-search.js'

const { values } = parseArgs({
  options: {
    tasks: { type: 'string', default: '100000' },
    rounds: { type: 'string', default: '10' },
    'write-docs': { type: 'boolean', default: false },
  },
})
const taskCount = Number(values.tasks)
const rounds = Number(values.rounds)
const adminUrl = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'
const loadAtStart = loadavg()[0]

// A made-up vocabulary (syllables), Zipf-distributed, with product words mixed in at fixed ranks.
const SYLLABLES = ['ka', 'lo', 'mi', 'ter', 'van', 'sul', 'dor', 'pe', 'ri', 'gon', 'ax', 'bel', 'cu', 'fen', 'hol', 'ju']
const PRODUCT = ['login', 'safari', 'payment', 'invoice', 'crash', 'export', 'timeout', 'dashboard', 'upload', 'password', 'search', 'mobile', 'android', 'cache', 'webhook', 'billing', 'slow', 'email', 'report', 'migration']
const VOCABULARY: string[] = []
for (let i = 0; VOCABULARY.length < 4000; i++) {
  const w = SYLLABLES[i % 16] + SYLLABLES[Math.floor(i / 16) % 16] + (i >= 256 ? SYLLABLES[Math.floor(i / 256) % 16] : '')
  VOCABULARY.push(w)
}
PRODUCT.forEach((w, i) => VOCABULARY.splice(40 + i * 30, 0, w)) // ranks 40, 70, … 610: in about 9 % down to 1 % of the tasks
const ZIPF: number[] = []
{
  let sum = 0
  for (let r = 1; r <= VOCABULARY.length; r++) ZIPF.push((sum += 1 / r))
  for (let r = 0; r < ZIPF.length; r++) ZIPF[r] /= sum
}
const word = (rnd: () => number) => {
  const x = rnd()
  let lo = 0, hi = ZIPF.length - 1
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    if (ZIPF[mid] < x) lo = mid + 1
    else hi = mid
  }
  return VOCABULARY[lo]
}
const words = (rnd: () => number, min: number, max: number) => Array.from({ length: min + Math.floor(rnd() * (max - min + 1)) }, () => word(rnd)).join(' ')

const QUERIES: [string, string][] = [
  ['login', ''], ['safari', ''], ['payment invoice', ''], ['"login safari"', ''], ['crash -android', ''],
  ['invoice or billing', ''], ['timeout', '&status=todo'], ['export report', ''], ['webhook', ''], ['password email', ''],
  ['migration', '&tag=backend'], ['slow dashboard', ''], ['upload', '&status=done'], ['email', ''], ['mobile cache', ''],
  ['kalo', ''], ['terdorlo', ''], ['"search mobile"', ''], ['login', '&page2'], ['belcu -login', ''],
]

const dbName = `tasksync_searchbench_${randomBytes(4).toString('hex')}`
const admin = postgres(adminUrl, { max: 1, onnotice: () => {} })
await admin.unsafe(`create database ${dbName}`)
const dbUrl = new URL(adminUrl)
dbUrl.pathname = '/' + dbName
const app = await buildApp(
  loadConfig({
    NODE_ENV: 'test',
    DATABASE_URL: dbUrl.toString(),
    DATA_DIR: mkdtempSync(join(tmpdir(), 'tasksync-searchbench-')),
    JWT_SECRET: randomBytes(32).toString('hex'),
    LOG_LEVEL: 'silent',
    HOUSEKEEPING_INTERVAL_S: '0',
    SCRYPT_LOG_N: '10',
  }),
)
await app.listen({ host: '127.0.0.1', port: 0 })
const address = app.server.address()
const base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`

try {
  const seedStart = performance.now()
  const [org] = await seedData(app.database, {
    orgs: 1, users: 5, projects: 10, tasks: taskCount, history: 0, comments: 0,
    hashPassword: (p) => hashPassword(p, 10),
    text: (i, rnd) => ({ title: `${words(rnd, 3, 8)} #${i + 1}`, description: words(rnd, 10, 60) }),
  })
  // A second organization with the same words: its tasks must never be searched through.
  await seedData(app.database, { orgs: 1, users: 1, projects: 1, tasks: Math.floor(taskCount / 10), history: 0, comments: 0, hashPassword: (p) => hashPassword(p, 10), randomSeed: 7, text: (i, rnd) => ({ title: words(rnd, 3, 8), description: words(rnd, 10, 60) }) })
  const seedMs = performance.now() - seedStart
  await app.database.rows(sql`vacuum analyze tasks`)
  const [{ version }] = await app.database.rows<{ version: string }>(sql`select current_setting('server_version') as version`)
  const member = org.users[2]
  const login = await (await fetch(`${base}/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: member.email, password: member.password, device: { name: 'bench', platform: 'bench' } }) })).json()
  const token = login.accessToken as string
  const get = async (path: string) => {
    const started = performance.now()
    const res = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${token}` } })
    const body = await res.json()
    if (res.status !== 200) throw new Error(`${path}: ${res.status} ${JSON.stringify(body)}`)
    return { ms: performance.now() - started, body }
  }
  const paths: string[] = []
  for (const [q, extra] of QUERIES) {
    if (extra === '&page2') {
      const first = await get(`/api/tasks?q=${encodeURIComponent(q)}`)
      paths.push(`/api/tasks?q=${encodeURIComponent(q)}&cursor=${first.body.nextCursor}`)
    } else paths.push(`/api/tasks?q=${encodeURIComponent(q)}${extra}`)
  }
  const hits: number[] = []
  for (const p of paths) hits.push((await get(p)).body.items.length) // warm-up: plans, caches
  const times: number[][] = paths.map(() => [])
  const sqlTimes: number[] = []
  const baseline: number[] = []
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < paths.length; i++) times[i].push((await get(paths[i])).ms)
    baseline.push((await get('/api/tasks?limit=50')).ms) // the same route without q: HTTP, auth and a page of 50
    for (const [q, extra] of QUERIES) {
      if (extra) continue
      const started = performance.now()
      await searchTasks(app.database, org.id, { q, limit: 51 })
      sqlTimes.push(performance.now() - started)
    }
  }
  const counts = await app.database.rows<{ q: string; n: number }>(sql`
    select q, (select count(*)::int from tasks where org_id = ${org.id}::uuid and search @@ websearch_to_tsquery('simple', q)) as n
    from unnest(${`{${QUERIES.map(([q]) => JSON.stringify(q)).join(',')}}`}::text[]) as q`)

  const all = times.flat().sort((a, b) => a - b)
  const pct = (xs: number[], p: number) => xs[Math.min(xs.length - 1, Math.ceil((p / 100) * xs.length) - 1)]
  const fmt = (ms: number) => ms.toFixed(1)
  const machine = `${cpus().length} × ${cpus()[0]?.model.trim() ?? 'cpu'}, Node ${process.version}, PostgreSQL ${version}`
  const lines = [
    `machine: ${machine} (app, client and PostgreSQL on one box; 1-min load average ${loadAtStart.toFixed(1)} at start, ${loadavg()[0].toFixed(1)} at end)`,
    `seeded ${taskCount} tasks (+${Math.floor(taskCount / 10)} in another org) in ${(seedMs / 1000).toFixed(1)} s`,
    `${QUERIES.length} queries × ${rounds} rounds over HTTP (page of 50 with snippets): p50 ${fmt(pct(all, 50))} ms, p95 ${fmt(pct(all, 95))} ms, max ${fmt(all.at(-1)!)} ms`,
    `the search statement alone (in process, no HTTP; the queries without a filter): p50 ${fmt(pct([...sqlTimes].sort((x, y) => x - y), 50))} ms, p95 ${fmt(pct([...sqlTimes].sort((x, y) => x - y), 95))} ms`,
    `baseline, GET /api/tasks?limit=50 without q on the same box meanwhile: p50 ${fmt(pct([...baseline].sort((x, y) => x - y), 50))} ms, p95 ${fmt(pct([...baseline].sort((x, y) => x - y), 95))} ms`,
    '',
    '| query | filter | matching tasks | median ms | p95 ms |',
    '|---|---|---|---|---|',
    ...QUERIES.map(([q, extra], i) => {
      const s = [...times[i]].sort((a, b) => a - b)
      return `| \`${q}\` | ${extra.replace('&', '') || '—'} | ${counts.find((c) => c.q === q)?.n ?? '?'} | ${fmt(pct(s, 50))} | ${fmt(pct(s, 95))} |`
    }),
  ]
  console.log(lines.join('\n'))
  if (hits.some((n) => n === 0)) console.log(`(queries with no hit: ${QUERIES.filter((_, i) => hits[i] === 0).map(([q]) => q).join(', ')})`)
  if (values['write-docs']) writeDocs(lines)
} finally {
  await app.close()
  await admin.unsafe(`drop database if exists ${dbName} with (force)`)
  await admin.end()
}

function writeDocs(lines: string[]) {
  const path = join(import.meta.dirname, '..', 'docs', 'benchmarks.md')
  const doc = readFileSync(path, 'utf8')
  const section = ['## Search', '', 'Full-text search, `GET /api/tasks?q=` (PostgreSQL, GIN index, ranked, with snippets). Reproduce with', '`npx tsx load/search-bench.ts --tasks ' + taskCount + ' --rounds ' + rounds + ' --write-docs`.', '', ...lines, ''].join('\n')
  const start = doc.indexOf('## Search\n')
  const next = start < 0 ? -1 : doc.indexOf('\n## ', start + 1)
  const out = start < 0 ? doc.trimEnd() + '\n\n' + section : doc.slice(0, start) + section + (next < 0 ? '' : doc.slice(next + 1))
  writeFileSync(path, out)
}
