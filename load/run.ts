/**
 * The load harness: scenarios against the built tasksync server (real
 * PostgreSQL, a private Redis), optionally side by side with ShareDB, each
 * asserting its invariants. See README "Load harness" and docs/benchmarks.md.
 *
 *   npm run load                                        # steady, 100 tasks × 10 raw sockets, 30 s
 *   npm run load -- --peer sharedb --rounds 3           # steady, tasksync and ShareDB alternately, medians
 *   npm run load -- --scenario hot,idle,storm --out load/results/today
 *
 * Every scenario creates its own database (and drops it), its own Redis
 * prefix, and stops what it started. The exit code is 1 when an invariant fails.
 */
import { cpus, loadavg } from 'node:os'
import { parseArgs } from 'node:util'
import postgres from 'postgres'
import { SCENARIOS, catchup, hot, idle, mixed, steady, storm, type Context, type Scenario } from './scenarios.js'
import { table, writeReport, type RunResult } from './report.js'
import { ensureBuilt, ensureSharedbInstalled, startRedis } from './services.js'

const { values: args } = parseArgs({
  args: process.argv.slice(2).filter((a) => a !== '--'),
  options: {
    scenario: { type: 'string', default: 'steady' },
    peer: { type: 'string', default: 'none' },
    rounds: { type: 'string', default: '1' },
    instances: { type: 'string', default: '1' },
    tasks: { type: 'string', default: '100' },
    'sockets-per-task': { type: 'string', default: '10' },
    duration: { type: 'string', default: '30' },
    warmup: { type: 'string', default: '3' },
    workers: { type: 'string', default: '3' },
    // raw: the wire protocol by hand (load/worker.ts); sdk: each socket is a TaskSyncClient (load/sdk-worker.ts).
    client: { type: 'string', default: 'raw' },
    writers: { type: 'string', default: '50' },
    sockets: { type: 'string' },
    devices: { type: 'string', default: '100' },
    'day-ops': { type: 'string', default: '10000' },
    edits: { type: 'string', default: '3' },
    users: { type: 'string', default: '500' },
    'actions-per-min': { type: 'string', default: '6' },
    'pg-url': { type: 'string', default: process.env.LOAD_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres' },
    // Without it the run starts its own redis-server (so Redis CPU is the run's alone).
    'redis-url': { type: 'string', default: process.env.LOAD_REDIS_URL },
    out: { type: 'string' },
    'no-build': { type: 'boolean', default: false },
    // dist: the built server (measured figures); tsx: the sources, no build (the smoke test).
    server: { type: 'string', default: 'dist' },
    // Seeds the generators' random choices (edit positions, human actions): LOAD_SEED in each worker.
    seed: { type: 'string' },
    // Kept from the first harness: --idle N is --scenario idle --sockets N.
    idle: { type: 'string' },
  },
})

const log = (...a: unknown[]) => console.log(`[load ${new Date().toISOString().slice(11, 19)}]`, ...a)
const scenarios = (args.idle ? ['idle'] : args.scenario!.split(',')) as Scenario[]
for (const s of scenarios) if (!SCENARIOS.includes(s)) throw new Error(`--scenario: ${s} is not one of ${SCENARIOS.join(', ')}`)
if (args.peer !== 'none' && args.peer !== 'sharedb') throw new Error(`--peer must be none or sharedb, not ${args.peer}`)
if (args.client !== 'raw' && args.client !== 'sdk') throw new Error(`--client must be raw or sdk, not ${args.client}`)
if (args.server !== 'dist' && args.server !== 'tsx') throw new Error(`--server must be dist or tsx, not ${args.server}`)
if (args.seed) process.env.LOAD_SEED = args.seed
const peers: ('tasksync' | 'sharedb')[] = args.peer === 'sharedb' ? ['tasksync', 'sharedb'] : ['tasksync']
const rounds = Number(args.rounds)

/** Per-scenario defaults of --sockets: storm 1,000 (the size: 5,000), idle 2,000 then 4,000 (the issue's: --sockets 10000 → 20,000). */
const socketsFor = (s: Scenario) => Number(args.sockets ?? args.idle ?? (s === 'storm' ? 1000 : 2000))

const admin = postgres(args['pg-url']!, { max: 2, onnotice: () => {} })
const redis = await startRedis(args['redis-url'])
const meta = {
  command: `npm run load -- ${process.argv.slice(2).filter((a) => a !== '--').join(' ')}`,
  startedAt: new Date().toISOString(),
  loadAverageAtStart: loadavg(),
  cpus: cpus().length,
  cpuModel: cpus()[0]?.model,
  node: process.version,
  seed: args.seed ?? null,
  redis: args['redis-url'] ? 'given' : 'private redis-server',
  loadAverageAtEnd: [] as number[],
}
log(`load average ${loadavg().map((l) => l.toFixed(2)).join(' ')} on ${cpus().length} cores; scenarios ${scenarios.join(', ')}; peer ${args.peer}`)
const results: RunResult[] = []
let exitCode = 0
try {
  if (!args['no-build'] && args.server === 'dist') ensureBuilt()
  if (peers.includes('sharedb')) ensureSharedbInstalled()
  for (const scenario of scenarios) {
    const ctx: Context = {
      admin,
      pgUrl: args['pg-url']!,
      redisUrl: redis.url,
      redisPids: redis.pids,
      log,
      opts: {
        tasks: Number(args.tasks),
        socketsPerTask: Number(args['sockets-per-task']),
        durationS: Number(args.duration),
        warmupS: Number(args.warmup),
        workers: Number(args.workers),
        instances: Number(args.instances),
        client: args.client as 'raw' | 'sdk',
        writers: Number(args.writers),
        sockets: socketsFor(scenario),
        devices: Number(args.devices),
        dayOps: Number(args['day-ops']),
        edits: Number(args.edits),
        users: Number(args.users),
        actionsPerMin: Number(args['actions-per-min']),
        poolSize: process.env.LOAD_POOL_SIZE ?? '10',
        server: args.server as 'dist' | 'tsx',
      },
    }
    if (scenario === 'steady') results.push(...(await steady(ctx, peers, rounds)))
    else if (scenario === 'hot') results.push(...(await hot(ctx, peers, rounds)))
    else
      for (let round = 1; round <= rounds; round++) {
        if (peers.includes('sharedb')) log(`${scenario}: tasksync only (the ShareDB peer runs steady and hot)`)
        results.push(await { storm, idle, catchup, mixed }[scenario](ctx, round))
      }
  }
} catch (err) {
  console.error(err)
  exitCode = 1
} finally {
  await redis.stop()
  await admin.end()
}
meta.loadAverageAtEnd = loadavg()
if (results.length) {
  console.log('\n== tasksync load: results ==')
  console.log(`load average at start ${meta.loadAverageAtStart.map((l) => l.toFixed(2)).join(' ')}, at end ${meta.loadAverageAtEnd.map((l) => l.toFixed(2)).join(' ')}`)
  console.log(table(results))
}
if (args.out) {
  writeReport(args.out, results, meta)
  log(`wrote ${args.out}/results.json and ${args.out}/report.html`)
}
if (results.some((r) => r.invariants.some((i) => !i.ok))) exitCode = 1
process.exit(exitCode)
