/**
 * The scenarios of `npm run load`, each against a fresh system under test and
 * each asserting its invariants, not only its speed:
 *
 *   steady   tasks × sockets, one writer per task with one op in flight (raw sockets, SDK, or ShareDB's client)
 *   hot      many SDK writers on one task: every replica identical at the end
 *   storm    SDK sockets over two instances, kill -9 one: every socket back on the survivor and resumed
 *   idle     idle subscribed sockets on one instance: server memory per socket (slope)
 *   catchup  devices back after many ops push their queued edits and catch up while live traffic goes on
 *   mixed    SDK clients at human rates (edits, presence, comments): cost per connected user
 *
 * Invariants checked where they apply: convergence (every socket's view equals
 * the server's snapshot), no gap (no rev skipped on any socket, the op log
 * gap-free), no lost acked op (every ack is in the op log at its rev with its
 * clientId and seq).
 */
import { randomUUID } from 'node:crypto'
import postgres from 'postgres'
import WebSocket from 'ws'
import { contentHash } from './canonical.js'
import { cpuBetween, sampleCpu, type CpuSpent } from './cpu.js'
import { Fleet, json, setupDocs, setupOrg, type WorkerKind, type WorkerResult } from './fleet.js'
import { Histogram } from './histogram.js'
import { rssBytes } from './proc.js'
import { cdfPoints, fmt, percentiles, type Invariant, type RunResult } from './report.js'
import { LOAD_JWT_SECRET, sleep, startSharedb, startTasksync, type SystemUnderTest } from './services.js'
import { loadSigningKeys, signAccessToken } from '../src/auth/tokens.js'
import type { SocketPlan } from './worker.js'
import type { Acked, View } from './worker-loop.js'

export interface Options {
  tasks: number
  socketsPerTask: number
  durationS: number
  warmupS: number
  workers: number
  instances: number
  client: 'raw' | 'sdk'
  writers: number
  sockets: number
  devices: number
  dayOps: number
  edits: number
  users: number
  actionsPerMin: number
  poolSize: string
  server: 'dist' | 'tsx'
}

export interface Context {
  admin: postgres.Sql
  pgUrl: string
  redisUrl: string
  redisPids: number[]
  opts: Options
  log: (...a: unknown[]) => void
}

export const SCENARIOS = ['steady', 'hot', 'storm', 'idle', 'catchup', 'mixed'] as const
export type Scenario = (typeof SCENARIOS)[number]

// ---------------------------------------------------------------- invariants

/** Every view equals the server's snapshot of its task (tasksync: REST; ShareDB: its snapshots table). */
async function convergence(sut: SystemUnderTest, token: string, views: View[]): Promise<Invariant> {
  const server = new Map<string, { rev: number; hash: string }>()
  const ids = [...new Set(views.map((v) => v.taskId))]
  if (sut.peer === 'tasksync') {
    for (let i = 0; i < ids.length; i += 20)
      await Promise.all(
        ids.slice(i, i + 20).map(async (id) => {
          const snap = await json(`${sut.instances.find((x) => x.proc.exitCode === null && x.proc.signalCode === null)!.url}/api/tasks/${id}`, { token })
          server.set(id, { rev: snap.rev, hash: contentHash(snap) })
        }),
      )
  } else {
    const sql = postgres(sut.db.url, { max: 1, onnotice: () => {} })
    for (const r of await sql<{ doc_id: string; version: number; data: Record<string, unknown> }[]>`select doc_id, version, data from snapshots`)
      server.set(r.doc_id, { rev: r.version, hash: contentHash(r.data) })
    await sql.end()
  }
  const diverged = views.filter((v) => {
    const s = server.get(v.taskId)
    return !s || s.rev !== v.rev || s.hash !== v.hash
  })
  return {
    name: 'convergence',
    ok: views.length > 0 && diverged.length === 0,
    detail: `${views.length - diverged.length}/${views.length} sockets equal to the server's snapshot`,
  }
}

/** The op log of the run's tasks is gap-free, and every acked op is in it at its rev with its clientId and seq. */
async function opLog(sut: SystemUnderTest, taskIds: string[], acked: Acked[]): Promise<Invariant[]> {
  const sql = postgres(sut.db.url, { max: 1, onnotice: () => {} })
  try {
    const rows = await sql<{ task_id: string; rev: number; client_id: string | null; seq: string | number | null }[]>`
      select task_id, rev, client_id, seq from task_ops where task_id = any(${taskIds}) order by task_id, rev`
    const byTask = new Map<string, number[]>()
    const at = new Map<string, { clientId: string | null; seq: number | null }>()
    for (const r of rows) {
      byTask.set(r.task_id, [...(byTask.get(r.task_id) ?? []), r.rev])
      at.set(`${r.task_id}/${r.rev}`, { clientId: r.client_id, seq: r.seq === null ? null : Number(r.seq) })
    }
    let gapped = 0
    for (const revs of byTask.values()) if (revs.some((rev, i) => i > 0 && rev !== revs[i - 1] + 1)) gapped++
    const lost = acked.filter((a) => {
      const row = at.get(`${a.taskId}/${a.rev}`)
      return !row || row.clientId !== a.clientId || row.seq !== a.seq
    })
    return [
      { name: 'op log gap-free', ok: gapped === 0, detail: `${byTask.size - gapped}/${byTask.size} tasks with consecutive revs (${rows.length} ops)` },
      {
        name: 'no acked op lost',
        ok: lost.length === 0,
        detail: `${acked.length - lost.length}/${acked.length} acks found in the op log at their rev${lost.length ? `; first missing ${JSON.stringify(lost[0])}` : ''}`,
      },
    ]
  } finally {
    await sql.end()
  }
}

const noGaps = (r: WorkerResult): Invariant => ({ name: 'no gap', ok: r.gaps === 0, detail: `${r.gaps} rev jumps seen by sockets` })
const noErrors = (r: WorkerResult): Invariant => ({
  name: 'no errors',
  ok: r.errors === 0,
  detail: `${r.errors} errors${r.errorSamples.length ? ': ' + r.errorSamples.slice(0, 3).join('; ') : ''}`,
})

// ---------------------------------------------------------------- the measured window

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
    /* ShareDB has no /metrics; a killed instance answers nothing */
  }
  return out
}

/** What tasksync's /metrics says about the window: where an op's time went on the server. */
function serverBreakdown(a: Map<string, number>, b: Map<string, number>, wallS: number) {
  const d = (k: string) => (b.get(k) ?? 0) - (a.get(k) ?? 0)
  const statements = d('tasksync_commit_statements_total')
  const rows = d('tasksync_commit_rows_total')
  return {
    ackMeanMs: (d('tasksync_ws_ack_seconds_sum') / d('tasksync_ws_ack_seconds_count')) * 1000,
    queuedMeanMs: (d('tasksync_commit_queued_seconds_total') / rows) * 1000,
    statementMeanMs: (d('tasksync_commit_statement_seconds_total') / statements) * 1000,
    rowsPerStatement: rows / statements,
    eventLoopP99Ms: (b.get('nodejs_eventloop_lag_p99_seconds') ?? NaN) * 1000,
    gcMsPerS: (d('nodejs_gc_duration_seconds_sum') * 1000) / wallS,
  }
}

/**
 * What the run's PostgreSQL backends were doing, sampled once a second:
 * "<wait_event_type>:<wait_event>" (or "cpu" when active and not waiting) → share of
 * active samples. Says whether slow commits wait on locks, WAL flushes or the CPU.
 */
async function sampleWaits(sql: postgres.Sql, db: string, tally: Map<string, number>): Promise<void> {
  const rows = await sql<{ w: string }[]>`
    select coalesce(wait_event_type || ':' || wait_event, 'cpu') as w
    from pg_stat_activity where datname = ${db} and state = 'active' and pid <> pg_backend_pid()`
  for (const r of rows) tally.set(r.w, (tally.get(r.w) ?? 0) + 1)
}

const shares = (tally: Map<string, number>): Record<string, number> => {
  const total = [...tally.values()].reduce((a, b) => a + b, 0)
  return Object.fromEntries([...tally].sort((a, b) => b[1] - a[1]).slice(0, 8).map(([k, n]) => [k, Math.round((n / total) * 1000) / 10]))
}

interface Window {
  /** PostgreSQL backends' wait events over the window, % of active samples. */
  pgWaits: Record<string, number>
  server: ReturnType<typeof serverBreakdown>[]
  cpu: CpuSpent
  acks: number
  delivered: number
  wallS: number
  rss: number[]
}

/**
 * The measured window: CPU sampled at both ends, a progress line each second
 * (elapsed, ops/s, fan-out p99 so far, errors). Lasts `durationS`, or until
 * `until` settles if that is later.
 */
async function measure(ctx: Context, name: string, sut: SystemUnderTest, fleets: Fleet[], durationS: number, until?: Promise<unknown>): Promise<Window> {
  const src = {
    servers: () => sut.instances.map((i) => i.proc.pid!).filter(Boolean),
    databases: [sut.db.name],
    redis: ctx.redisPids,
    generators: () => fleets.flatMap((f) => f.procs.map((p) => p.pid!)),
  }
  for (const f of fleets) f.measure()
  const total = () => fleets.reduce((a, f) => {
    const p = f.progress()
    a.acks += p.acks
    a.delivered += p.delivered
    a.errors += p.errors
    a.fanout.merge(p.fanout)
    return a
  }, { acks: 0, delivered: 0, errors: 0, fanout: new Histogram() })
  const scrapeAll = () => (sut.peer === 'tasksync' ? Promise.all(sut.instances.map((i) => scrape(i.url))) : Promise.resolve([]))
  const m0 = await scrapeAll()
  const c0 = await sampleCpu(ctx.admin, src)
  const start = total()
  const t0 = Date.now()
  let done = !until
  void until?.finally(() => (done = true))
  let prev = start.acks
  const tty = process.stdout.isTTY
  const waits = new Map<string, number>()
  for (let s = 1; s <= durationS || !done; s++) {
    await sleep(t0 + s * 1000 - Date.now() - 500)
    await sampleWaits(ctx.admin, sut.db.name, waits).catch(() => {})
    await sleep(t0 + s * 1000 - Date.now())
    const now = total()
    const line = `[${name}] ${s}s  ${fmt(now.acks - prev, 0)} ops/s  fan-out p99 ${fmt(now.fanout.percentile(99))} ms  errors ${now.errors}`
    prev = now.acks
    if (tty) process.stdout.write(`\r${line}    `)
    // Not a terminal: a line every 5 s and the last one.
    else if (s % 5 === 0 || (s >= durationS && done)) ctx.log(line)
    if (s > durationS + 300) break
  }
  if (tty) process.stdout.write('\n')
  const c1 = await sampleCpu(ctx.admin, src)
  const end = total()
  const wallS = (Date.now() - t0) / 1000
  const m1 = await scrapeAll()
  return {
    pgWaits: shares(waits),
    // A killed instance (storm) answers no scrape at the end: it has no breakdown.
    server: m1.flatMap((b, i) => (b.size ? [serverBreakdown(m0[i], b, wallS)] : [])),
    cpu: cpuBetween(c0, c1),
    acks: end.acks - start.acks,
    delivered: end.delivered - start.delivered,
    wallS,
    rss: sut.instances.map((i) => rssBytes(i.proc.pid!) / 1048576),
  }
}

function result(scenario: string, sut: SystemUnderTest, kind: WorkerKind, round: number, params: Record<string, unknown>, w: Window, r: WorkerResult, invariants: Invariant[], extra: Record<string, unknown> = {}): RunResult {
  const ops = w.acks
  const per = (s: number) => (ops > 0 ? (s * 1000) / ops : NaN)
  return {
    scenario,
    peer: sut.peer,
    client: kind,
    round,
    params,
    durationS: w.wallS,
    committedOps: ops,
    committedOpsPerS: ops / w.wallS,
    deliveredMsgsPerS: w.delivered / w.wallS,
    ackMs: percentiles(r.ack),
    fanoutMs: percentiles(r.fanout),
    cpu: { ...w.cpu, perOpMs: { server: per(w.cpu.server), postgres: per(w.cpu.postgres), redis: per(w.cpu.redis), total: per(w.cpu.server + w.cpu.postgres + w.cpu.redis) } },
    serverRssMiB: w.rss,
    errors: r.errors,
    gaps: r.gaps,
    errorSamples: r.errorSamples.slice(0, 5),
    invariants,
    extra: { ...extra, ...(w.server.length ? { serverSide: w.server } : {}), ...(Object.keys(w.pgWaits).length ? { pgWaits: w.pgWaits } : {}) },
    cdf: { ack: cdfPoints(r.ack), fanout: cdfPoints(r.fanout) },
  }
}

const startSut = (ctx: Context, peer: 'tasksync' | 'sharedb', instances = 1, inspect = false) =>
  peer === 'sharedb'
    ? startSharedb(ctx.admin, ctx.pgUrl, { redisUrl: ctx.redisUrl, poolSize: ctx.opts.poolSize })
    : startTasksync(ctx.admin, ctx.pgUrl, { instances, redisUrl: ctx.redisUrl, poolSize: ctx.opts.poolSize, inspect, server: ctx.opts.server })

/** Socket k of task t on instance (t + k) mod I: writers (k = 0) and subscribers spread over the instances. */
function plansFor(sut: SystemUnderTest, token: string, taskIds: string[], perTask: number, role: (k: number) => Partial<SocketPlan>): SocketPlan[] {
  const plans: SocketPlan[] = []
  for (const [t, taskId] of taskIds.entries())
    for (let k = 0; k < perTask; k++) {
      const inst = sut.instances[(t + k) % sut.instances.length]
      plans.push({ wsUrl: inst.url.replace(/^http/, 'ws'), token, taskId, clientId: randomUUID(), writer: k === 0, ...role(k) })
    }
  return plans
}

// ---------------------------------------------------------------- steady and hot

async function live(
  ctx: Context,
  o: { scenario: string; peer: 'tasksync' | 'sharedb'; kind: WorkerKind; round: number; tasks: number; perTask: number; writer: (k: number) => boolean; instances?: number },
): Promise<RunResult> {
  const { opts } = ctx
  const sut = await startSut(ctx, o.peer, o.instances ?? opts.instances)
  let fleet: Fleet | undefined
  try {
    const org = o.peer === 'tasksync' ? await setupOrg(sut.instances[0].url, o.tasks) : { token: '', taskIds: await setupDocs(sut.instances[0].url, o.tasks) }
    const plans = plansFor(sut, org.token, org.taskIds, o.perTask, (k) => ({ writer: o.writer(k) }))
    fleet = new Fleet(o.kind, plans, opts.workers, o.perTask)
    ctx.log(`${o.scenario} ${o.peer} (${o.kind}) round ${o.round}: opening ${plans.length} sockets on ${o.tasks} task(s), ${sut.instances.length} instance(s), ${fleet.procs.length} workers`)
    await fleet.open(o.peer === 'tasksync')
    fleet.start()
    await sleep(opts.warmupS * 1000)
    const w = await measure(ctx, `${o.scenario}/${o.peer}-${o.kind} #${o.round}`, sut, [fleet], opts.durationS)
    const r = await fleet.stop()
    const invariants = [await convergence(sut, org.token, r.views), noGaps(r), noErrors(r)]
    if (o.peer === 'tasksync') invariants.push(...(await opLog(sut, org.taskIds, r.acked)))
    if (o.scenario === 'hot') {
      const distinct = new Set(r.views.map((v) => `${v.rev}/${v.hash}`))
      invariants.push({ name: 'replicas identical', ok: distinct.size === 1, detail: `${r.views.length} replicas, ${distinct.size} distinct state(s)` })
    }
    // hot is bound by its generators on a small box (each SDK client applies every op): their CPU per committed op beside the server's.
    const extra = o.scenario === 'hot' && w.acks > 0 ? { generatorCoreMsPerOp: (w.cpu.generator * 1000) / w.acks, generatorCores: w.cpu.generator / w.wallS } : {}
    return result(o.scenario, sut, o.kind, o.round, { tasks: o.tasks, socketsPerTask: o.perTask, instances: sut.instances.length, workers: fleet.procs.length }, w, r, invariants, extra)
  } finally {
    fleet?.kill()
    await sut.stop()
  }
}

export async function steady(ctx: Context, peers: ('tasksync' | 'sharedb')[], rounds: number): Promise<RunResult[]> {
  const out: RunResult[] = []
  for (let round = 1; round <= rounds; round++)
    for (const peer of peers) {
      const kind: WorkerKind = peer === 'sharedb' ? 'sharedb' : ctx.opts.client
      out.push(await live(ctx, { scenario: 'steady', peer, kind, round, tasks: ctx.opts.tasks, perTask: ctx.opts.socketsPerTask, writer: (k) => k === 0 }))
    }
  return out
}

export async function hot(ctx: Context, peers: ('tasksync' | 'sharedb')[], rounds: number): Promise<RunResult[]> {
  const out: RunResult[] = []
  for (let round = 1; round <= rounds; round++)
    for (const peer of peers) {
      const kind: WorkerKind = peer === 'sharedb' ? 'sharedb' : 'sdk'
      out.push(await live(ctx, { scenario: 'hot', peer, kind, round, tasks: 1, perTask: ctx.opts.writers, writer: () => true, instances: 1 }))
    }
  return out
}

// ---------------------------------------------------------------- storm

/** One resumed socket of a storm, in ms after the kill: its last attempt, that socket's open, welcome and resume (all tasks subscribed). */
interface Phase {
  attempts: number
  attemptMs: number
  openMs: number
  welcomeMs: number
  onlineMs: number
}

/** p50 / p90 / max of each phase over the resumed sockets, and of the steps between them. */
function phaseSummary(phases: Phase[]): Record<string, { p50: number; p90: number; max: number }> {
  const q = (xs: number[]) => {
    const v = xs.filter(Number.isFinite).sort((a, b) => a - b)
    const at = (p: number) => v[Math.min(v.length - 1, Math.floor(p * v.length))] ?? NaN
    return { p50: at(0.5), p90: at(0.9), max: v.at(-1) ?? NaN }
  }
  return {
    attempts: q(phases.map((p) => p.attempts)),
    lastAttemptMs: q(phases.map((p) => p.attemptMs)),
    openAfterAttemptMs: q(phases.map((p) => p.openMs - p.attemptMs)),
    welcomeAfterOpenMs: q(phases.map((p) => p.welcomeMs - p.openMs)),
    onlineAfterWelcomeMs: q(phases.map((p) => p.onlineMs - p.welcomeMs)),
  }
}

/** SDK sockets over two instances; kill -9 of instance 1 a third into the window; every socket of it must come back on the survivor. */
export async function storm(ctx: Context, round: number): Promise<RunResult> {
  const { opts } = ctx
  const perTask = opts.socketsPerTask
  const tasks = Math.ceil(opts.sockets / perTask)
  const sut = await startSut(ctx, 'tasksync', 2)
  let fleet: Fleet | undefined
  try {
    const org = await setupOrg(sut.instances[0].url, tasks)
    const plans = plansFor(sut, org.token, org.taskIds, perTask, (k) => ({ writer: k === 0 }))
    fleet = new Fleet('sdk', plans, opts.workers, perTask)
    ctx.log(`storm round ${round}: opening ${plans.length} SDK sockets on ${tasks} tasks over 2 instances`)
    await fleet.open(true)
    fleet.start()
    await sleep(opts.warmupS * 1000)
    const f = fleet
    const storm = (async () => {
      await sleep((opts.durationS * 1000) / 3)
      const killedAt = Date.now()
      sut.kill(1)
      ctx.log(`storm: kill -9 of instance 1 (${sut.instances[1].url})`)
      await f.cmd('route', { from: sut.instances[1].url.replace(/^http/, 'ws'), to: sut.instances[0].url.replace(/^http/, 'ws') })
      await f.cmd('route', { from: sut.instances[1].url, to: sut.instances[0].url })
      const onKilled = plans.filter((p) => p.wsUrl === sut.instances[1].url.replace(/^http/, 'ws')).length
      for (;;) {
        const st = await f.cmd<{ total: number; online: number; lost: number; resumed: number; resumedMs: number[]; phases: Phase[] }>('status', { since: killedAt })
        const lost = st.reduce((a, s) => a + s.lost, 0)
        const resumed = st.reduce((a, s) => a + s.resumed, 0)
        const online = st.reduce((a, s) => a + s.online, 0)
        if ((lost >= onKilled && resumed === lost && online === plans.length) || Date.now() - killedAt > 60_000) {
          const times = st.flatMap((s) => s.resumedMs).sort((a, b) => a - b)
          return {
            onKilledInstance: onKilled,
            lost,
            resumed,
            online,
            total: plans.length,
            lastResumedS: (times.at(-1) ?? NaN) / 1000,
            medianResumedS: (times[Math.floor(times.length / 2)] ?? NaN) / 1000,
            phases: phaseSummary(st.flatMap((s) => s.phases)),
          }
        }
        await sleep(250)
      }
    })()
    const w = await measure(ctx, `storm #${round}`, sut, [fleet], opts.durationS, storm)
    const st = await storm
    ctx.log(`storm: resume phases (ms after the kill; p50 / p90 / max) ${JSON.stringify(st.phases)}`)
    const r = await fleet.stop()
    const invariants: Invariant[] = [
      {
        name: 'all resumed on the survivor',
        ok: st.lost >= st.onKilledInstance && st.resumed === st.lost && st.online === st.total,
        detail: `${st.resumed}/${st.lost} dropped sockets resumed (${st.onKilledInstance} were on the killed instance), ${st.online}/${st.total} online; last ${fmt(st.lastResumedS, 2)} s after the kill`,
      },
      await convergence(sut, org.token, r.views),
      noGaps(r),
      ...(await opLog(sut, org.taskIds, r.acked)),
    ]
    return result('storm', sut, 'sdk', round, { sockets: plans.length, tasks, socketsPerTask: perTask, instances: 2, workers: fleet.procs.length }, w, r, invariants, st)
  } finally {
    fleet?.kill()
    await sut.stop()
  }
}

// ---------------------------------------------------------------- idle

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

async function scrapeHeap(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text()
  const m = /^nodejs_heap_size_used_bytes(?:\{[^}]*\})?\s+(\S+)/m.exec(text)
  return m ? Number(m[1]) : NaN
}

/**
 * Memory per idle subscribed socket as a slope: server RSS and V8 heap with N
 * idle sockets, then 2N; (at 2N − at N) / N leaves out the fixed cost of the
 * first sockets. Each reading after a full GC forced through the inspector.
 */
export async function idle(ctx: Context, round: number): Promise<RunResult> {
  const { opts } = ctx
  const n = opts.sockets
  const sut = await startSut(ctx, 'tasksync', 1, true)
  const fleets: Fleet[] = []
  try {
    const inst = sut.instances[0]
    const inspectPort = 9300
    const org = await setupOrg(inst.url, opts.tasks)
    const plan = () => plansFor(sut, org.token, org.taskIds, Math.ceil(n / opts.tasks), () => ({ writer: false })).slice(0, n)
    const reading = async () => {
      await sleep(3000)
      await collectGarbage(inspectPort)
      await sleep(500)
      return { rss: rssBytes(inst.proc.pid!), heap: await scrapeHeap(inst.url) }
    }
    const open = async () => {
      const f = new Fleet('raw', plan(), opts.workers, 1)
      fleets.push(f)
      await f.open()
      return f
    }
    await sleep(2000)
    const base = await reading()
    ctx.log(`idle: opening ${n} idle sockets`)
    await open()
    const atN = await reading()
    ctx.log(`idle: opening ${n} more`)
    await open()
    const at2N = await reading()
    const kb = (a: number, b: number) => (b - a) / n / 1024
    const extra = {
      idleSockets: 2 * n,
      rssMiB: [base.rss, atN.rss, at2N.rss].map((b) => b / 1048576),
      heapMiB: [base.heap, atN.heap, at2N.heap].map((b) => b / 1048576),
      rssKbPerSocket: kb(atN.rss, at2N.rss),
      heapKbPerSocket: kb(atN.heap, at2N.heap),
      rssKbPerSocketFirstN: kb(base.rss, atN.rss),
    }
    const counted = fleets.map((f) => f.procs.length)
    const results = await Promise.all(fleets.map((f) => f.stop()))
    const r = results.reduce((a, b) => ({ ...a, errors: a.errors + b.errors, errorSamples: [...a.errorSamples, ...b.errorSamples], views: [...a.views, ...b.views] }))
    const w: Window = { pgWaits: {}, server: [], cpu: { server: 0, postgres: 0, redis: 0, generator: 0, wallS: 0, postgresBackends: 0 }, acks: 0, delivered: 0, wallS: 0, rss: [at2N.rss / 1048576] }
    const invariants: Invariant[] = [
      { name: 'all subscribed', ok: r.views.length === 2 * n, detail: `${r.views.length}/${2 * n} sockets subscribed and still open` },
      noErrors(r),
    ]
    return result('idle', sut, 'raw', round, { sockets: 2 * n, tasks: opts.tasks, workers: counted }, w, r, invariants, extra)
  } finally {
    for (const f of fleets) f.kill()
    await sut.stop()
  }
}

// ---------------------------------------------------------------- catchup

/**
 * Devices (SDK clients, 10 per task) go offline and queue `edits` each; while
 * they are away `dayOps` ops are committed on their tasks; then they all come
 * back at once (catch-up over REST, push of the queued edits, resubscribe)
 * while live traffic goes on on other tasks. Every device must be in sync
 * within 60 s; the live fan-out is measured meanwhile.
 */
export async function catchup(ctx: Context, round: number): Promise<RunResult> {
  const { opts } = ctx
  const perTask = 10
  const deviceTasks = Math.ceil(opts.devices / perTask)
  const liveTasks = 20
  const sut = await startSut(ctx, 'tasksync', 1)
  const fleets: Fleet[] = []
  try {
    const url = sut.instances[0].url
    const org = await setupOrg(url, deviceTasks + liveTasks)
    const devTaskIds = org.taskIds.slice(0, deviceTasks)
    const liveTaskIds = org.taskIds.slice(deviceTasks)
    // Each device its own device (a pull's lastSeq covers the clientIds of the caller's device only).
    const tokens = await deviceTokens(url, org.token, opts.devices)
    const devicePlans = plansFor(sut, org.token, devTaskIds, perTask, () => ({ writer: false, role: 'device' }))
      .slice(0, opts.devices)
      .map((p, i) => ({ ...p, token: tokens[i] }))
    const devices = new Fleet('sdk', devicePlans, opts.workers, perTask)
    fleets.push(devices)
    ctx.log(`catchup round ${round}: ${opts.devices} devices on ${deviceTasks} tasks`)
    await devices.open(true)
    await devices.cmd('offline', { edits: opts.edits })
    // The day: one raw writer per device task until dayOps are committed.
    const day = new Fleet('raw', plansFor(sut, org.token, devTaskIds, 1, () => ({ writer: true })), opts.workers, 1)
    fleets.push(day)
    await day.open(true)
    day.start()
    const dayStart = Date.now()
    while (day.progress().acks < opts.dayOps) await sleep(250)
    const dayResult = await day.stop()
    ctx.log(`catchup: ${dayResult.acks} ops committed while the devices were away (${fmt((Date.now() - dayStart) / 1000)} s)`)
    // Live traffic on other tasks, then everyone back.
    const liveFleet = new Fleet('raw', plansFor(sut, org.token, liveTaskIds, 5, (k) => ({ writer: k === 0 })), opts.workers, 5)
    fleets.push(liveFleet)
    await liveFleet.open(true)
    liveFleet.start()
    await sleep(opts.warmupS * 1000)
    const t0 = Date.now()
    const back = devices.cmd<{ devices: number; syncedMs: number[] }>('online', { timeoutMs: 120_000 })
    const w = await measure(ctx, `catchup #${round}`, sut, [liveFleet, devices], opts.durationS, back)
    const synced = (await back).flatMap((b) => b.syncedMs).sort((a, b) => a - b)
    const lastS = (synced.at(-1) ?? NaN) / 1000
    const liveR = await liveFleet.stop()
    const devR = await devices.stop()
    const r: WorkerResult = {
      ...liveR,
      errors: liveR.errors + devR.errors,
      errorSamples: [...liveR.errorSamples, ...devR.errorSamples],
      gaps: liveR.gaps + devR.gaps,
      views: [...liveR.views, ...devR.views],
      acked: [...liveR.acked, ...devR.acked, ...dayResult.acked],
    }
    const invariants: Invariant[] = [
      { name: 'devices in sync within 60 s', ok: synced.length === opts.devices && lastS <= 60, detail: `${synced.length}/${opts.devices} in sync; median ${fmt(synced[Math.floor(synced.length / 2)] / 1000, 2)} s, last ${fmt(lastS, 2)} s after coming back` },
      { name: 'queued edits pushed', ok: devR.acks >= opts.devices, detail: `${devR.acks} acks for ${opts.devices * opts.edits} queued edits (the SDK may merge a device's queue into one change)` },
      await convergence(sut, org.token, r.views),
      noGaps(r),
      ...(await opLog(sut, org.taskIds, r.acked)),
    ]
    void t0
    return result('catchup', sut, 'sdk', round, { devices: opts.devices, deviceTasks, dayOps: dayResult.acks, editsPerDevice: opts.edits, liveTasks, liveSocketsPerTask: 5 }, w, r, invariants, {
      dayOps: dayResult.acks,
      lastDeviceSyncedS: lastS,
      medianDeviceSyncedS: synced[Math.floor(synced.length / 2)] / 1000,
      // When the devices were in sync, by share of the devices: do they finish one after another, or all near the end?
      deviceSyncedS: Object.fromEntries([10, 25, 50, 75, 90].map((p) => [`p${p}`, (synced[Math.min(synced.length - 1, Math.floor((synced.length * p) / 100))] ?? NaN) / 1000])),
      liveFanoutP99Ms: liveR.fanout.percentile(99),
    })
  } finally {
    for (const f of fleets) f.kill()
    await sut.stop()
  }
}

/**
 * `count` devices of the owner, registered through the API, each with an access token
 * naming it, signed with the servers' secret (a login per device would cost a
 * password hash each).
 */
async function deviceTokens(url: string, ownerToken: string, count: number): Promise<string[]> {
  const claims = JSON.parse(Buffer.from(ownerToken.split('.')[1], 'base64url').toString('utf8')) as { sub: string; org: string; role: 'owner' }
  const keys = await loadSigningKeys({ JWT_SECRET: LOAD_JWT_SECRET })
  const tokens: string[] = []
  for (let i = 0; i < count; i += 20) {
    const batch = Array.from({ length: Math.min(20, count - i) }, async (_, k) => {
      const device = await json(`${url}/api/devices`, { method: 'POST', token: ownerToken, body: JSON.stringify({ name: `device ${i + k}`, platform: 'node' }) })
      return (await signAccessToken(keys, { userId: claims.sub, orgId: claims.org, deviceId: device.id, role: claims.role }, 3600)).token
    })
    tokens.push(...(await Promise.all(batch)))
  }
  return tokens
}

// ---------------------------------------------------------------- mixed

/** SDK clients at human rates (edits, presence, comments), 5 per task: server CPU and memory per connected user. */
export async function mixed(ctx: Context, round: number): Promise<RunResult> {
  const { opts } = ctx
  const perTask = 5
  const tasks = Math.ceil(opts.users / perTask)
  const sut = await startSut(ctx, 'tasksync', 1)
  let fleet: Fleet | undefined
  try {
    const rss0 = rssBytes(sut.instances[0].proc.pid!)
    const org = await setupOrg(sut.instances[0].url, tasks)
    const plans = plansFor(sut, org.token, org.taskIds, perTask, () => ({ writer: false, role: 'human', actionsPerMin: opts.actionsPerMin })).slice(0, opts.users)
    fleet = new Fleet('sdk', plans, opts.workers, perTask)
    ctx.log(`mixed round ${round}: ${plans.length} users on ${tasks} tasks, ${opts.actionsPerMin} actions/min each`)
    await fleet.open(true)
    fleet.start()
    await sleep(opts.warmupS * 1000)
    const w = await measure(ctx, `mixed #${round}`, sut, [fleet], opts.durationS)
    const r = await fleet.stop()
    const invariants = [await convergence(sut, org.token, r.views), noGaps(r), noErrors(r), ...(await opLog(sut, org.taskIds, r.acked))]
    const users = plans.length
    return result('mixed', sut, 'sdk', round, { users, tasks, actionsPerMin: opts.actionsPerMin }, w, r, invariants, {
      users,
      serverCpuPctPer1000Users: ((w.cpu.server / w.wallS) * 100 * 1000) / users,
      serverPlusPgCpuPctPer1000Users: (((w.cpu.server + w.cpu.postgres + w.cpu.redis) / w.wallS) * 100 * 1000) / users,
      serverRssKbPerUser: ((w.rss[0] * 1048576 - rss0) / users) / 1024,
      presencePerS: r.presence / w.wallS,
      comments: r.comments,
    })
  } finally {
    fleet?.kill()
    await sut.stop()
  }
}
