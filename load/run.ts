/**
 * The load scenario: N sockets on M tasks over one or two tasksync instances.
 * One writer per task keeps one op in flight (send, wait for the ack, send the
 * next); the other sockets of the task are subscribers. Sockets are spread over
 * worker processes so the generator is not the bottleneck.
 *
 *   npm run load -- --instances 1 --tasks 100 --sockets-per-task 10 --duration 30
 *   npm run load -- --idle 5000          # server memory per idle socket
 *
 * With no --url it creates a fresh PostgreSQL database, starts the instances
 * (built server, real PostgreSQL and Redis) and removes the database at the end.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { writeFileSync, mkdirSync } from 'node:fs'
import { parseArgs } from 'node:util'
import postgres from 'postgres'
import WebSocket from 'ws'
import { Histogram } from './histogram.js'
import { cpuSeconds, cpuSecondsNamed, rssBytes } from './proc.js'
import { contentHash } from './canonical.js'
import type { SocketPlan } from './worker.js'

const { values: args } = parseArgs({
  args: process.argv.slice(2).filter((a) => a !== '--'),
  options: {
    instances: { type: 'string', default: '1' },
    tasks: { type: 'string', default: '100' },
    'sockets-per-task': { type: 'string', default: '10' },
    duration: { type: 'string', default: '30' },
    warmup: { type: 'string', default: '3' },
    workers: { type: 'string', default: '3' },
    // raw: the wire protocol by hand (load/worker.ts); sdk: each socket is a TaskSyncClient (load/sdk-worker.ts).
    client: { type: 'string', default: 'raw' },
    url: { type: 'string' },
    idle: { type: 'string' },
    'pg-url': { type: 'string', default: process.env.LOAD_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres' },
    'redis-url': { type: 'string', default: process.env.LOAD_REDIS_URL ?? 'redis://127.0.0.1:6379' },
    out: { type: 'string' },
  },
})

const INSTANCES = Number(args.instances)
const TASKS = Number(args.tasks)
const PER_TASK = Number(args['sockets-per-task'])
const DURATION_S = Number(args.duration)
const WARMUP_S = Number(args.warmup)
const WORKERS = Number(args.workers)
if (args.client !== 'raw' && args.client !== 'sdk') throw new Error(`--client must be raw or sdk, not ${args.client}`)
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const log = (...a: unknown[]) => console.log(`[load ${new Date().toISOString().slice(11, 19)}]`, ...a)

interface Instance {
  url: string
  proc?: ChildProcess
}

async function json(url: string, init: RequestInit & { token?: string } = {}): Promise<any> {
  const headers: Record<string, string> = { 'content-type': 'application/json' }
  if (init.token) headers.authorization = `Bearer ${init.token}`
  const res = await fetch(url, { ...init, headers })
  const body = res.status === 204 ? null : await res.json()
  if (!res.ok) throw new Error(`${init.method ?? 'GET'} ${url} → ${res.status} ${JSON.stringify(body)}`)
  return body
}

async function startInstances(): Promise<{ instances: Instance[]; cleanup: () => Promise<void> }> {
  if (args.url) return { instances: args.url.split(',').map((url) => ({ url })), cleanup: async () => {} }
  const dbName = `tasksync_load_${Date.now().toString(36)}`
  const admin = postgres(args['pg-url']!, { max: 1, onnotice: () => {} })
  await admin.unsafe(`create database ${dbName}`)
  const dbUrl = new URL(args['pg-url']!)
  dbUrl.pathname = '/' + dbName
  const build = spawn(process.execPath, ['scripts/ensure-build.mjs'], { stdio: 'inherit' })
  await new Promise((r) => build.on('exit', r))
  const env = {
    ...process.env,
    NODE_ENV: 'production',
    DATABASE_URL: dbUrl.toString(),
    REDIS_URL: args['redis-url'],
    REDIS_PREFIX: `tasksync-load:${dbName}:`,
    JWT_SECRET: 'load-test-secret-load-test-secret-0123456789',
    ACCESS_TOKEN_TTL_S: '3600',
    LOG_LEVEL: 'warn',
    AUTH_RATE_LIMIT_PER_MIN: '10000',
    WS_MAX_SOCKETS: '100000',
    DATABASE_POOL_SIZE: process.env.LOAD_POOL_SIZE ?? '10',
  }
  const instances: Instance[] = []
  for (let i = 0; i < INSTANCES; i++) {
    const port = 4100 + i
    // LOAD_SERVER_ARGS: extra node flags for the servers, e.g. "--cpu-prof --cpu-prof-dir=load/results".
    const nodeArgs = (process.env.LOAD_SERVER_ARGS ?? '').split(' ').filter(Boolean)
    // --idle forces a full GC (through the inspector) before each reading, so garbage does not count as memory per socket.
    if (args.idle) nodeArgs.push(`--inspect=127.0.0.1:${9300 + i}`)
    const proc = spawn(process.execPath, [...nodeArgs, 'dist/src/server.js'], {
      env: { ...env, PORT: String(port), INSTANCE_ID: `load-${i}` },
      stdio: ['ignore', 'inherit', 'inherit'],
    })
    instances.push({ url: `http://127.0.0.1:${port}`, proc })
  }
  for (const inst of instances) {
    const deadline = Date.now() + 60_000
    for (;;) {
      try {
        if ((await fetch(`${inst.url}/health`)).ok) break
      } catch {
        /* not up yet */
      }
      if (Date.now() > deadline) throw new Error(`${inst.url} did not start`)
      await sleep(200)
    }
  }
  const cleanup = async () => {
    for (const inst of instances) inst.proc?.kill('SIGTERM')
    await Promise.all(instances.map((i) => new Promise((r) => (i.proc?.exitCode !== null ? r(null) : i.proc?.on('exit', r)))))
    await admin.unsafe(`drop database if exists ${dbName} with (force)`)
    await admin.end()
  }
  return { instances, cleanup }
}

async function setupOrg(url: string): Promise<{ token: string; taskIds: string[] }> {
  const reg = await json(`${url}/api/auth/register`, {
    method: 'POST',
    body: JSON.stringify({
      orgName: 'load',
      email: `load-${randomUUID()}@example.test`,
      password: 'load-password-123',
      displayName: 'Load',
      device: { name: 'load generator', platform: 'node' },
    }),
  })
  const token: string = reg.accessToken
  // load/events-bench.ts: one endpoint subscribed to every event while the load runs.
  if (process.env.LOAD_WEBHOOK_URL) {
    const body = { url: process.env.LOAD_WEBHOOK_URL, events: ['*'], ...(process.env.LOAD_WEBHOOK_SECRET ? { secret: process.env.LOAD_WEBHOOK_SECRET } : {}) }
    await json(`${url}/api/webhooks`, { method: 'POST', token, body: JSON.stringify(body) })
  }
  const taskIds: string[] = []
  for (let i = 0; i < TASKS; i += 20) {
    const batch = Array.from({ length: Math.min(20, TASKS - i) }, (_, k) => {
      const id = randomUUID()
      taskIds.push(id)
      return json(`${url}/api/tasks`, { method: 'POST', token, body: JSON.stringify({ id, title: `load task ${i + k}` }) })
    })
    await Promise.all(batch)
  }
  return { token, taskIds }
}

function startWorkers(plans: SocketPlan[]): { procs: ChildProcess[]; slices: SocketPlan[][] } {
  const slices: SocketPlan[][] = Array.from({ length: WORKERS }, () => [])
  // Socket k of task t goes to worker (t + k) % W: writers (k = 0) and subscribers are both spread evenly.
  plans.forEach((p, i) => slices[(Math.floor(i / PER_TASK) + (i % PER_TASK)) % WORKERS].push(p))
  // LOAD_WORKER_ARGS: extra node flags for the generator workers (e.g. --cpu-prof).
  const execArgv = ['--import', 'tsx', ...(process.env.LOAD_WORKER_ARGS ?? '').split(' ').filter(Boolean)]
  const procs = slices.map(() => fork(new URL(args.client === 'sdk' ? './sdk-worker.ts' : './worker.ts', import.meta.url).pathname, [], { execArgv }))
  return { procs, slices }
}

function waitFor<T>(proc: ChildProcess, type: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const onMsg = (m: any) => {
      if (m.type === type) {
        proc.off('message', onMsg)
        resolve(m)
      } else if (m.type === 'failed') reject(new Error(m.error))
    }
    proc.on('message', onMsg)
  })
}

/** A Prometheus text scrape: metric name (labels dropped) → sum of its samples. */
async function scrape(url: string): Promise<Map<string, number>> {
  const out = new Map<string, number>()
  try {
    const text = await (await fetch(`${url}/metrics`)).text()
    for (const line of text.split('\n')) {
      if (!line || line.startsWith('#')) continue
      const m = /^([a-zA-Z_:][\w:]*)(?:\{[^}]*\})?\s+(\S+)/.exec(line)
      if (m) out.set(m[1], (out.get(m[1]) ?? 0) + Number(m[2]))
    }
  } catch {
    /* an instance given by --url may not expose /metrics */
  }
  return out
}

/** What the server says about the measured window: where an op's time went on its side. */
function serverBreakdown(a: Map<string, number>, b: Map<string, number>) {
  const d = (k: string) => (b.get(k) ?? 0) - (a.get(k) ?? 0)
  const statements = d('tasksync_commit_statements_total')
  const rows = d('tasksync_commit_rows_total')
  return {
    ackMeanMs: (d('tasksync_ws_ack_seconds_sum') / d('tasksync_ws_ack_seconds_count')) * 1000,
    queuedMeanMs: (d('tasksync_commit_queued_seconds_total') / rows) * 1000,
    statementMeanMs: (d('tasksync_commit_statement_seconds_total') / statements) * 1000,
    rowsPerStatement: rows / statements,
    eventLoopP99Ms: (b.get('nodejs_eventloop_lag_p99_seconds') ?? NaN) * 1000,
    gcMsPerS: d('nodejs_gc_duration_seconds_sum') * 1000,
  }
}

const fmt = (n: number, d = 1) => (Number.isFinite(n) ? n.toFixed(d) : '–')

async function runScenario(instances: Instance[]) {
  const { token, taskIds } = await setupOrg(instances[0].url)
  log(`${TASKS} tasks created; opening ${TASKS * PER_TASK} sockets over ${instances.length} instance(s) from ${WORKERS} workers`)
  const plans: SocketPlan[] = []
  // Sockets of a task alternate over the instances, starting one further per task,
  // so writers (k = 0) are spread over the instances too.
  for (const [t, taskId] of taskIds.entries())
    for (let k = 0; k < PER_TASK; k++) {
      const inst = instances[(t + k) % instances.length]
      plans.push({ wsUrl: inst.url.replace(/^http/, 'ws'), token, taskId, clientId: randomUUID(), writer: k === 0 })
    }
  const { procs, slices } = startWorkers(plans)
  await Promise.all(procs.map((p, i) => (p.send({ type: 'init', sockets: slices[i] }), waitFor(p, 'ready'))))
  log('all sockets subscribed; starting writers')

  let acks = 0
  let delivered = 0
  const lastAcks = new Map<ChildProcess, number>()
  const lastDelivered = new Map<ChildProcess, number>()
  for (const p of procs)
    p.on('message', (m: any) => {
      if (m.type !== 'progress') return
      acks += m.acks - (lastAcks.get(p) ?? 0)
      delivered += m.delivered - (lastDelivered.get(p) ?? 0)
      lastAcks.set(p, m.acks)
      lastDelivered.set(p, m.delivered)
    })
  for (const p of procs) p.send({ type: 'start' })
  await sleep(WARMUP_S * 1000)
  // Latencies count from here to 'stop': the warm-up (JIT, first bursts) and the final drain are left out.
  for (const p of procs) p.send({ type: 'measure' })
  const serverPids = instances.map((i) => i.proc?.pid).filter((x): x is number => !!x)
  const cpu0 = {
    servers: serverPids.map(cpuSeconds),
    workers: procs.map((p) => cpuSeconds(p.pid!)),
    postgres: cpuSecondsNamed('postgres'),
    redis: cpuSecondsNamed('redis-server'),
  }
  const scraped0 = await Promise.all(instances.map((i) => scrape(i.url)))
  const acks0 = acks
  const delivered0 = delivered
  const t0 = Date.now()
  let prevAcks = acks
  for (let s = 1; s <= DURATION_S; s++) {
    await sleep(1000)
    if (s % 5 === 0 || s === DURATION_S) log(`t=${s}s committed ${acks - prevAcks}/s (last 1 s), delivered ${delivered} total`)
    prevAcks = acks
  }
  const elapsed = (Date.now() - t0) / 1000
  const scraped1 = await Promise.all(instances.map((i) => scrape(i.url)))
  const breakdown = scraped1.map((b, i) => serverBreakdown(scraped0[i], b))
  for (const s of breakdown) s.gcMsPerS /= elapsed
  const acked = acks - acks0
  const deliveredWindow = delivered - delivered0
  const cpu1 = {
    servers: serverPids.map(cpuSeconds),
    workers: procs.map((p) => cpuSeconds(p.pid!)),
    postgres: cpuSecondsNamed('postgres'),
    redis: cpuSecondsNamed('redis-server'),
  }
  const rss = serverPids.map(rssBytes)
  const results = await Promise.all(procs.map((p) => (p.send({ type: 'stop' }), waitFor<any>(p, 'result'))))
  const ack = new Histogram()
  const fanout = new Histogram()
  let gaps = 0
  let errors = 0
  const errorSamples: string[] = []
  const views: { taskId: string; rev: number; hash: string }[] = []
  for (const r of results) {
    ack.merge(Histogram.fromSparse(r.ack))
    fanout.merge(Histogram.fromSparse(r.fanout))
    gaps += r.gaps
    errors += r.errors
    errorSamples.push(...r.errorSamples)
    views.push(...r.views)
  }
  // Convergence: every socket's view equals the server's snapshot of its task.
  let diverged = 0
  const server = new Map<string, { rev: number; hash: string }>()
  for (const id of taskIds) {
    const snap = await json(`${instances[0].url}/api/tasks/${id}`, { token })
    server.set(id, { rev: snap.rev, hash: contentHash(snap) })
  }
  for (const v of views) {
    const s = server.get(v.taskId)!
    if (s.rev !== v.rev || s.hash !== v.hash) diverged++
  }
  const pct = (a: number, b: number) => fmt(((a - b) / elapsed) * 100, 0) + '%'
  const summary = {
    scenario: { instances: instances.length, tasks: TASKS, socketsPerTask: PER_TASK, durationS: elapsed, workers: WORKERS },
    committedOpsPerS: acked / elapsed,
    deliveredMsgsPerS: deliveredWindow / elapsed,
    ackMs: { p50: ack.percentile(50), p95: ack.percentile(95), p99: ack.percentile(99) },
    fanoutMs: { p50: fanout.percentile(50), p95: fanout.percentile(95), p99: fanout.percentile(99) },
    cpu: {
      servers: cpu1.servers.map((c, i) => pct(c, cpu0.servers[i])),
      postgres: pct(cpu1.postgres, cpu0.postgres),
      redis: pct(cpu1.redis, cpu0.redis),
      workers: cpu1.workers.map((c, i) => pct(c, cpu0.workers[i])),
    },
    serverRssMiB: rss.map((b) => fmt(b / 1048576)),
    server: breakdown,
    gaps,
    errors,
    errorSamples: errorSamples.slice(0, 5),
    converged: { sockets: views.length, diverged },
  }
  console.log('\n== tasksync load: results ==')
  console.log(`instances ${instances.length}, ${TASKS} tasks × ${PER_TASK} sockets, ${fmt(elapsed)} s measured after ${WARMUP_S} s warm-up`)
  console.log(`committed ops/s       ${fmt(summary.committedOpsPerS, 0)}`)
  console.log(`delivered msgs/s      ${fmt(summary.deliveredMsgsPerS, 0)}`)
  console.log(`ack latency ms        p50 ${fmt(summary.ackMs.p50)}  p95 ${fmt(summary.ackMs.p95)}  p99 ${fmt(summary.ackMs.p99)}`)
  console.log(`fan-out latency ms    p50 ${fmt(summary.fanoutMs.p50)}  p95 ${fmt(summary.fanoutMs.p95)}  p99 ${fmt(summary.fanoutMs.p99)}`)
  console.log(`CPU (of one core)     servers ${summary.cpu.servers.join(' ')}  postgres ${summary.cpu.postgres}  redis ${summary.cpu.redis}  generator ${summary.cpu.workers.join(' ')}`)
  console.log(`server RSS MiB        ${summary.serverRssMiB.join(' ')}`)
  for (const b of breakdown)
    console.log(
      `server side ms        ack mean ${fmt(b.ackMeanMs)} = queued ${fmt(b.queuedMeanMs)} + statement ${fmt(b.statementMeanMs)} (${fmt(b.rowsPerStatement)} rows) + rest;` +
        ` event-loop p99 ${fmt(b.eventLoopP99Ms)}, GC ${fmt(b.gcMsPerS)} ms/s`,
    )
  console.log(`gaps ${gaps}, errors ${errors}${errorSamples.length ? ' (' + errorSamples.slice(0, 3).join('; ') + ')' : ''}`)
  console.log(`convergence           ${views.length - diverged}/${views.length} sockets equal to the server snapshot`)
  for (const p of procs) p.kill()
  return summary
}

/**
 * Memory per idle socket as a slope: server RSS and V8 heap in use with N idle
 * subscribed sockets, then with 2N; (at 2N − at N) / N leaves out the fixed
 * cost of the first sockets (buffers, code warmed up, the org's router).
 */
/** Runs a full GC in the process whose inspector listens on `port` (HeapProfiler.collectGarbage). */
async function collectGarbage(port: number): Promise<void> {
  const [target] = (await json(`http://127.0.0.1:${port}/json/list`)) as { webSocketDebuggerUrl: string }[]
  const ws = new WebSocket(target.webSocketDebuggerUrl)
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => ws.send(JSON.stringify({ id: 1, method: 'HeapProfiler.collectGarbage' })))
    ws.on('message', (data) => {
      if (JSON.parse(String(data)).id === 1) resolve()
    })
    ws.once('error', reject)
  })
  ws.close()
}

async function runIdle(instances: Instance[], count: number) {
  const pid = instances[0].proc?.pid
  if (!pid) throw new Error('--idle needs a spawned instance (omit --url)')
  const { token, taskIds } = await setupOrg(instances[0].url)
  const plan = (): SocketPlan[] =>
    Array.from({ length: count }, (_, i) => ({
      wsUrl: instances[0].url.replace(/^http/, 'ws'),
      token,
      taskId: taskIds[i % taskIds.length],
      clientId: randomUUID(),
      writer: false,
    }))
  const measure = async () => {
    await sleep(5000)
    await collectGarbage(9300)
    await sleep(500)
    const heap = (await scrape(instances[0].url)).get('nodejs_heap_size_used_bytes') ?? NaN
    return { rss: rssBytes(pid), heap }
  }
  const open = async () => {
    const { procs, slices } = startWorkers(plan())
    await Promise.all(procs.map((p, i) => (p.send({ type: 'init', sockets: slices[i] }), waitFor(p, 'ready'))))
    return procs
  }
  await sleep(2000)
  const base = await measure()
  const first = await open()
  const atN = await measure()
  const second = await open()
  const at2N = await measure()
  const kb = (a: number, b: number) => (b - a) / count / 1024
  const MiB = (b: number) => fmt(b / 1048576)
  console.log(`\n== idle sockets ==`)
  console.log(`server RSS MiB        0: ${MiB(base.rss)}  ${count}: ${MiB(atN.rss)}  ${2 * count}: ${MiB(at2N.rss)}`)
  console.log(`server heap used MiB  0: ${MiB(base.heap)}  ${count}: ${MiB(atN.heap)}  ${2 * count}: ${MiB(at2N.heap)}`)
  console.log(
    `per idle socket KB    RSS ${fmt(kb(atN.rss, at2N.rss), 2)} (slope ${count}→${2 * count}; ${fmt(kb(base.rss, atN.rss), 2)} for the first ${count}),` +
      ` heap ${fmt(kb(atN.heap, at2N.heap), 2)}`,
  )
  for (const p of [...first, ...second]) p.kill()
  return {
    idleSockets: count,
    rssMiB: [base.rss, atN.rss, at2N.rss].map((b) => b / 1048576),
    heapMiB: [base.heap, atN.heap, at2N.heap].map((b) => b / 1048576),
    kbPerSocket: kb(atN.rss, at2N.rss),
    heapKbPerSocket: kb(atN.heap, at2N.heap),
  }
}

const { instances, cleanup } = await startInstances()
let exitCode = 0
try {
  const summary = args.idle ? await runIdle(instances, Number(args.idle)) : await runScenario(instances)
  if (args.out) {
    mkdirSync('load/results', { recursive: true })
    writeFileSync(args.out, JSON.stringify(summary, null, 2))
  }
  if ('converged' in summary && (summary.converged.diverged > 0 || summary.gaps > 0)) exitCode = 1
} catch (err) {
  console.error(err)
  exitCode = 1
} finally {
  await cleanup()
}
process.exit(exitCode)
