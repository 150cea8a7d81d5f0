/**
 * `npm run chaos`: a Jepsen-style check of tasksync's promises. Three instances
 * share a PostgreSQL and a Redis that this run owns; clients through the SDK,
 * raw sockets and REST push/pull make seeded random mutations on a handful of
 * tasks while the nemesis kills, pauses, restarts and partitions; after a quiet
 * period the recorded history is checked against the op log (chaos/checker.ts).
 *
 *   npm run chaos -- --seconds 600 --seed 7
 *   npm run chaos -- --seconds 30 --nemesis kill,partition --fault ack-before-commit
 *
 * Exit code 0 when every property holds, 1 when one does not, 2 when the run
 * itself could not be carried out. The history and the logs stay in the run's folder.
 */
import { spawnSync } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import postgres from 'postgres'
import { openDatabase, type Database } from '../src/storage/index.js'
import { loadOps, loadTask, toOpEvent } from '../src/storage/tasks.js'
import { check, type ServerTask, type Verdict, type Violation } from './checker.js'
import { FaultProxy } from './fault-proxy.js'
import { History } from './history.js'
import { NEMESES, Nemesis, type Cluster, type NemesisKind } from './nemesis.js'
import { Rng } from './rng.js'
import { LocalPostgres, LocalRedis, ServerInstance, freePort, type ServerBuild } from './services.js'
import { RawClient } from './clients/raw.js'
import { RestSyncClient } from './clients/rest.js'
import { SdkClient } from './clients/sdk.js'
import { World, type ChaosClient } from './world.js'

const { values: args } = parseArgs({
  args: process.argv.slice(2).filter((a) => a !== '--'),
  options: {
    seconds: { type: 'string', default: '60' },
    seed: { type: 'string' },
    instances: { type: 'string', default: '3' },
    sdk: { type: 'string', default: '3' },
    raw: { type: 'string', default: '3' },
    rest: { type: 'string', default: '2' },
    tasks: { type: 'string', default: '4' },
    /** Most ms between two mutations of one client. */
    think: { type: 'string', default: '400' },
    nemesis: { type: 'string', default: 'all' },
    exclude: { type: 'string', default: '' },
    fault: { type: 'string' },
    server: { type: 'string', default: 'dist' },
    quiet: { type: 'string', default: '120' },
    out: { type: 'string' },
    json: { type: 'string' },
    verbose: { type: 'boolean', default: false },
    /** Judges a finished run's folder again (history.jsonl + server.json), without running anything. */
    check: { type: 'string' },
  },
})

const SECONDS = Number(args.seconds)
const SEED = args.seed !== undefined ? Number(args.seed) : Math.floor(Math.random() * 1e9)
const HEARTBEAT_MS = 2000
const started = Date.now()
const log = (msg: string) => console.log(`[chaos ${((Date.now() - started) / 1000).toFixed(1).padStart(6)}s] ${msg}`)
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

function nemesisKinds(): NemesisKind[] {
  const all = Object.keys(NEMESES) as NemesisKind[]
  const wanted = args.nemesis === 'all' ? all : args.nemesis === 'none' ? [] : (args.nemesis!.split(',') as NemesisKind[])
  const excluded = new Set(args.exclude!.split(',').filter(Boolean))
  for (const k of [...wanted, ...excluded]) if (!all.includes(k as NemesisKind)) throw new Error(`unknown nemesis ${k}; known: ${all.join(', ')}`)
  return wanted.filter((k) => !excluded.has(k))
}

async function api<T = any>(url: string, method: string, path: string, body?: unknown, token?: string): Promise<T> {
  const res = await fetch(url + path, {
    method,
    headers: { ...(body ? { 'content-type': 'application/json' } : {}), ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  })
  const text = await res.text()
  if (!res.ok) throw new Error(`${method} ${path} → ${res.status} ${text}`)
  return (text ? JSON.parse(text) : undefined) as T
}

interface Run {
  runDir: string
  history: History
  cluster: Cluster
  world: World
  orgId: string
  database: Database | null
  proxies: FaultProxy[]
}

async function setUp(runDir: string, history: History, rng: Rng): Promise<Run> {
  const build = args.server as ServerBuild
  if (build !== 'dist' && build !== 'tsx') throw new Error('--server is dist or tsx')
  if (build === 'dist') {
    const r = spawnSync(process.execPath, ['scripts/ensure-build.mjs'], { stdio: 'inherit' })
    if (r.status !== 0) throw new Error('build failed')
  }
  const pg = await LocalPostgres.create(join(runDir, 'postgres.log'))
  const admin = postgres(pg.url(), { max: 1, onnotice: () => {} })
  await admin`create database tasksync`
  await admin.end()
  const redis = await LocalRedis.create(join(runDir, 'redis.log'))
  log(`PostgreSQL on ${pg.port} (${pg.dir}), Redis on ${redis.port}`)
  const n = Number(args.instances)
  const pgProxies: FaultProxy[] = []
  const redisProxies: FaultProxy[] = []
  const instances: ServerInstance[] = []
  for (let i = 0; i < n; i++) {
    const pgProxy = await FaultProxy.start(pg.url())
    const redisProxy = await FaultProxy.start(redis.url)
    pgProxies.push(pgProxy)
    redisProxies.push(redisProxy)
    const env: Record<string, string> = {
      NODE_ENV: 'production',
      HOST: '127.0.0.1',
      DATABASE_URL: pgProxy.urlFor(pg.url('tasksync')),
      DATABASE_POOL_SIZE: '4',
      REDIS_URL: redisProxy.urlFor(redis.url),
      REDIS_PREFIX: 'chaos:',
      JWT_SECRET: 'chaos-secret-chaos-secret-chaos-secret-0123',
      INSTANCE_ID: `i${i}`,
      LOG_LEVEL: args.verbose ? 'info' : 'warn',
      DATA_DIR: join(runDir, `data-${i}`),
      WS_HEARTBEAT_MS: String(HEARTBEAT_MS),
      HOUSEKEEPING_INTERVAL_S: '0',
      AUTH_RATE_LIMIT_PER_MIN: '100000',
      SCRYPT_LOG_N: '10',
      SHUTDOWN_TIMEOUT_MS: '3000',
      ACCESS_TOKEN_TTL_S: '3600',
      ...(args.fault ? { TASKSYNC_FAULT: args.fault } : {}),
    }
    instances.push(new ServerInstance(`i${i}`, await freePort(), env, build, join(runDir, `instance-${i}.log`)))
  }
  // A crash (an exit nobody asked for) is recorded, and the instance restarted as a supervisor would.
  for (const s of instances) {
    s.onCrash = (how) => {
      history.note(s.name, `crashed (${how}); restarting it`)
      log(`${s.name} crashed (${how}); restarting it — see ${join(runDir, `instance-${s.name.slice(1)}.log`)}`)
      // A start that fails (PostgreSQL still starting up: the process exits) is a crash too, restarted again.
      setTimeout(() => void s.start().catch((err) => history.note(s.name, `restart failed: ${(err as Error).message.split('\n')[0]}`)), 1000)
    }
  }
  // The first alone (it runs the migrations), then the others.
  await instances[0].start()
  await Promise.all(instances.slice(1).map((s) => s.start()))
  log(`${n} instances up (${build}) on ports ${instances.map((s) => s.port).join(', ')}`)

  const url = instances[0].url
  const password = 'chaos-password-123'
  const owner = await api(url, 'POST', '/api/auth/register', { orgName: 'chaos', email: `owner-${SEED}@chaos.test`, password, displayName: 'Owner' })
  const orgId: string = owner.organization.id
  const world = new World(history)
  for (let i = 0; i < Number(args.tasks); i++) {
    const task = await api(url, 'POST', '/api/tasks', { id: rng.uuid(), title: `task ${i}` }, owner.accessToken)
    world.created(task.id)
  }

  const think = Number(args.think)
  const proxies: FaultProxy[] = [...pgProxies, ...redisProxies]
  const clients: ChaosClient[] = []
  const sdk: SdkClient[] = []
  const member = async (name: string) => {
    const email = `${name}-${SEED}@chaos.test`
    await api(url, 'POST', '/api/users', { email, password, displayName: name, role: 'member' }, owner.accessToken)
    return { email, password }
  }
  const login = async (cred: { email: string; password: string }, name: string) =>
    (await api(url, 'POST', '/api/auth/login', { ...cred, device: { name, platform: 'chaos' } })).accessToken as string
  const network = async (name: string) => {
    const lb = rng.fork(`lb:${name}`)
    const p = await FaultProxy.start(instances.map((s) => s.url), { random: () => lb.next() })
    proxies.push(p)
    return p
  }
  for (let i = 1; i <= Number(args.sdk); i++) {
    const name = `sdk-${i}`
    const c = new SdkClient(name, rng.fork(name), world, await network(name), await member(name), think)
    clients.push(c)
    sdk.push(c)
  }
  for (let i = 1; i <= Number(args.raw); i++) {
    const name = `raw-${i}`
    clients.push(new RawClient(name, rng.fork(name), world, await network(name), await login(await member(name), name), think))
  }
  for (let i = 1; i <= Number(args.rest); i++) {
    const name = `rest-${i}`
    clients.push(new RestSyncClient(name, rng.fork(name), world, await network(name), await login(await member(name), name), think))
  }
  const cluster: Cluster = { instances, pg, redis, pgProxies, redisProxies, clients, sdk, heartbeatMs: HEARTBEAT_MS }
  return { runDir, history, cluster, world, orgId, database: null, proxies }
}

/** Every task the run may have touched: the world's, and any a create was sent for. */
function taskIds(run: Run): string[] {
  const ids = new Set(run.world.tasks.keys())
  for (const e of run.history.events) if (e.type === 'invoke' && e.kind === 'create') ids.add(e.taskId)
  return [...ids]
}

async function readServer(run: Run): Promise<Map<string, ServerTask>> {
  run.database ??= await openDatabase({ databaseUrl: run.cluster.pg.url('tasksync'), dataDir: run.runDir, poolSize: 2 })
  const out = new Map<string, ServerTask>()
  for (const taskId of taskIds(run)) {
    const snapshot = await loadTask(run.database, run.orgId, taskId)
    if (!snapshot) continue
    const ops = (await loadOps(run.database, run.orgId, taskId, 1, 1_000_000)).map((o) => toOpEvent(taskId, o))
    out.set(taskId, { taskId, snapshot, ops })
  }
  return out
}

/**
 * The quiet period: nothing is injected any more and nobody writes. Waits until
 * every client has nothing unanswered and holds every task at the server's rev.
 */
async function settle(run: Run, seconds: number): Promise<Violation[]> {
  const deadline = Date.now() + seconds * 1000
  const { clients } = run.cluster
  let lagging: string[] = []
  while (Date.now() < deadline) {
    const server = await readServer(run)
    lagging = []
    for (const c of clients) {
      if (c.busy()) lagging.push(`${c.name}: mutations unanswered`)
      for (const [taskId, rev] of c.revs()) {
        const s = server.get(taskId)
        // Deleted before this client ever read it: a first pull lists no tombstones (docs/protocol.md), nothing to hold.
        if (s && rev === -1 && s.snapshot!.deleted) continue
        if (s && rev !== s.snapshot!.rev) lagging.push(`${c.name}: ${taskId} at ${rev}, server at ${s.snapshot!.rev}`)
      }
    }
    if (lagging.length === 0) {
      // Nothing changed while the clients were being read: settled.
      const again = await readServer(run)
      if ([...again.values()].every((t) => t.snapshot!.rev === server.get(t.taskId)?.snapshot!.rev)) return []
    }
    await sleep(500)
  }
  return lagging.map((message) => ({ message: `not settled after the ${seconds} s quiet period: ${message}`, excerpt: [] }))
}

function report(verdicts: Verdict[], run: Run, nemesis: Nemesis, server: Map<string, ServerTask>): Record<string, unknown> {
  const ev = run.history.events
  const count = (pred: (e: (typeof ev)[number]) => boolean) => ev.reduce((n, e) => n + (pred(e) ? 1 : 0), 0)
  const kinds = (e: { client: string }) => e.client.replace(/-\d+.*$/, '')
  const mutations: Record<string, { sent: number; acked: number; noop: number; refused: number; unknown: number }> = {}
  const outcome = new Map<string, { kind: string; acked: boolean; noop: boolean; refused: boolean }>()
  for (const e of ev) {
    if (e.type !== 'invoke' && e.type !== 'ack' && e.type !== 'fail') continue
    const k = `${e.writer}|${e.clientId}:${e.seq}`
    const o = outcome.get(k) ?? { kind: kinds(e), acked: false, noop: false, refused: false }
    outcome.set(k, o)
    if (e.type === 'ack') {
      o.acked = true
      o.noop ||= e.noop
    } else if (e.type === 'fail' && e.definite) o.refused = true
  }
  for (const o of outcome.values()) {
    const m = (mutations[o.kind] ??= { sent: 0, acked: 0, noop: 0, refused: 0, unknown: 0 })
    m.sent++
    if (o.acked) (o.noop ? m.noop++ : m.acked++)
    else if (o.refused) m.refused++
    else m.unknown++
  }
  const committed = [...server.values()].reduce((n, t) => n + t.ops.length, 0)
  const counts = {
    tasks: server.size,
    committedOps: committed,
    mutations,
    observations: count((e) => e.type === 'observe'),
    states: count((e) => e.type === 'state'),
    faults: nemesis.counts,
    crashes: Object.fromEntries(run.cluster.instances.filter((s) => s.crashes.length > 0).map((s) => [s.name, s.crashes])),
  }
  console.log(`\n== tasksync chaos: seed ${SEED}, ${SECONDS} s, ${run.cluster.instances.length} instances${args.fault ? `, TASKSYNC_FAULT=${args.fault}` : ''} ==`)
  console.log(`faults        ${Object.entries(nemesis.counts).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'}`)
  const crashed = Object.entries(counts.crashes)
  if (crashed.length > 0) console.log(`CRASHES       ${crashed.map(([name, how]) => `${name}: ${how.length} (${how.join(', ')})`).join('; ')} — restarted; the cause is in the instance's log`)
  console.log(`committed     ${committed} ops on ${server.size} tasks`)
  for (const [kind, m] of Object.entries(mutations)) {
    console.log(`${`${kind} mutations`.padEnd(15)}${m.sent} sent: ${m.acked} acked, ${m.noop} acked as no-ops, ${m.refused} refused, ${m.unknown} unknown`)
  }
  console.log(`observed      ${counts.observations} deliveries and reads, ${counts.states} replica states`)
  console.log('')
  for (const v of verdicts) {
    console.log(`${v.ok ? 'PASS' : 'FAIL'}  ${v.property.padEnd(18)} ${String(v.checked).padStart(7)} checked${v.ok ? '' : `, ${v.violations.length} violated`}  — ${v.description}`)
    for (const violation of v.violations.slice(0, 3)) {
      console.log(`        ✗ ${violation.message}`)
      for (const x of violation.excerpt) console.log(`            ${JSON.stringify(x)}`)
    }
    if (v.violations.length > 3) console.log(`        … ${v.violations.length - 3} more in the summary`)
  }
  console.log(`\nhistory: ${join(run.runDir, 'history.jsonl')}`)
  return counts
}

async function main(): Promise<number> {
  const kinds = nemesisKinds()
  const runDir = args.out ?? join('chaos', 'results', `${new Date().toISOString().replace(/[:.]/g, '-')}-seed${SEED}${args.fault ? `-${args.fault}` : ''}`)
  mkdirSync(runDir, { recursive: true })
  const history = new History(join(runDir, 'history.jsonl'))
  const rng = new Rng(SEED)
  log(`seed ${SEED}, ${SECONDS} s, nemeses: ${kinds.join(', ') || 'none'}; results in ${runDir}`)
  let run: Run | null = null
  const teardown = async () => {
    if (!run) return
    const r = run
    run = null
    await Promise.all(r.cluster.clients.map((c) => c.close().catch(() => {})))
    for (const s of r.cluster.instances) s.onCrash = null
    await Promise.all(r.cluster.instances.map((s) => s.stop().catch(() => {})))
    await r.database?.close().catch(() => {})
    await r.cluster.redis.stop().catch(() => {})
    await r.cluster.pg.destroy().catch(() => {})
    for (const p of r.proxies) await p.close().catch(() => {})
    await history.close()
  }
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => void teardown().finally(() => process.exit(130)))
  process.on('unhandledRejection', (err) => history.note('chaos', `unhandled rejection: ${(err as Error)?.stack ?? err}`))
  // A client failing on what a broken server sent must not end the run: the verdicts tell what went wrong.
  process.on('uncaughtException', (err) => history.note('chaos', `uncaught exception: ${err.stack ?? err}`))
  try {
    run = await setUp(runDir, history, rng)
    const r = run
    await Promise.all(r.cluster.clients.map((c) => c.start()))
    log(`${r.cluster.clients.length} clients running`)
    const nemesis = new Nemesis(r.cluster, rng.fork('nemesis'), history, kinds, args.verbose ? log : () => {})
    nemesis.start()
    for (let s = 0; s < SECONDS; ) {
      const step = Math.min(10, SECONDS - s)
      await sleep(step * 1000)
      s += step
      const acks = history.events.reduce((n, e) => n + (e.type === 'ack' ? 1 : 0), 0)
      log(`t=${s}s ${acks} acks, faults ${Object.entries(nemesis.counts).map(([k, v]) => `${k} ${v}`).join(' ') || 'none'}`)
    }
    log('stopping the nemesis (healing everything)')
    await nemesis.stop()
    for (const c of r.cluster.clients) c.stopWriting()
    log('quiet period: waiting for every client to settle')
    const unsettled = await settle(r, Number(args.quiet))
    for (const c of r.cluster.clients) c.recordFinal()
    const server = await readServer(r)
    // What the database held, beside the history: `--check <run folder>` judges them again.
    writeFileSync(join(runDir, 'server.json'), JSON.stringify({ unsettled, tasks: [...server.values()] }))
    const verdicts = check(history.events, server, { unsettled })
    const counts = report(verdicts, r, nemesis, server)
    const ok = verdicts.every((v) => v.ok)
    const summary = {
      seed: SEED,
      seconds: SECONDS,
      fault: args.fault ?? null,
      nemeses: kinds,
      ok,
      counts,
      verdicts: verdicts.map((v) => ({ ...v, violations: v.violations.slice(0, 20), violated: v.violations.length })),
      history: join(runDir, 'history.jsonl'),
    }
    writeFileSync(join(runDir, 'summary.json'), JSON.stringify(summary, null, 2))
    if (args.json) writeFileSync(args.json, JSON.stringify(summary, null, 2))
    return ok ? 0 : 1
  } catch (err) {
    console.error(err)
    return 2
  } finally {
    await teardown()
  }
}

/** `--check <run folder>`: the verdicts of a recorded run, printed again (after a change to the checker, say). */
function recheck(dir: string): number {
  const events = readFileSync(join(dir, 'history.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l))
  const saved = JSON.parse(readFileSync(join(dir, 'server.json'), 'utf8')) as { unsettled: Violation[]; tasks: ServerTask[] }
  const verdicts = check(events, new Map(saved.tasks.map((t) => [t.taskId, t])), { unsettled: saved.unsettled })
  for (const v of verdicts) {
    console.log(`${v.ok ? 'PASS' : 'FAIL'}  ${v.property.padEnd(18)} ${String(v.checked).padStart(7)} checked${v.ok ? '' : `, ${v.violations.length} violated`}`)
    for (const violation of v.violations.slice(0, 10)) console.log(`        ✗ ${violation.message}`)
  }
  return verdicts.every((v) => v.ok) ? 0 : 1
}

process.exit(args.check ? recheck(args.check) : await main())
