/**
 * What a load run stands up and tears down: its own Redis (a private
 * redis-server on a free port, so its CPU is the run's alone; or a given URL),
 * a fresh PostgreSQL database per system under test, the built tasksync
 * instances and the ShareDB peer.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { fileURLToPath } from 'node:url'
import postgres from 'postgres'

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const REPO = fileURLToPath(new URL('..', import.meta.url))
const SHAREDB_DIR = fileURLToPath(new URL('./peers/sharedb/', import.meta.url))

export async function freePort(): Promise<number> {
  const srv = createServer()
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r))
  const port = (srv.address() as { port: number }).port
  await new Promise((r) => srv.close(r))
  return port
}

async function waitHealthy(url: string, proc: ChildProcess, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`${url}: the server exited with ${proc.exitCode}`)
    try {
      if ((await fetch(`${url}/health`)).ok) return
    } catch {
      /* not up yet */
    }
    if (Date.now() > deadline) throw new Error(`${url} did not start`)
    await sleep(200)
  }
}

const exited = (p: ChildProcess) => new Promise((r) => (p.exitCode !== null || p.signalCode !== null ? r(null) : p.once('exit', r)))

export interface RedisService {
  url: string
  pids: number[]
  stop(): Promise<void>
}

/** A private redis-server (no persistence) when `given` is empty; the given URL otherwise (or the default one when redis-server cannot start). */
export async function startRedis(given: string | undefined): Promise<RedisService> {
  if (given) return { url: given, pids: [], stop: async () => {} }
  const port = await freePort()
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--maxclients', '20000'], {
    stdio: 'ignore',
  })
  const failed = new Promise<never>((_, reject) => proc.once('error', reject))
  const up = (async () => {
    for (let i = 0; i < 100; i++) {
      const r = spawnSync('redis-cli', ['-p', String(port), 'ping'], { encoding: 'utf8' })
      if (r.stdout?.trim() === 'PONG') return
      await sleep(100)
    }
    throw new Error('redis-server did not start')
  })()
  try {
    await Promise.race([up, failed])
  } catch (err) {
    // No redis-server binary here: the shared Redis, under the run's own key prefixes (its CPU then includes others' use).
    proc.kill('SIGKILL')
    console.log(`[load] no private redis-server (${(err as Error).message}); using redis://127.0.0.1:6379`)
    return { url: 'redis://127.0.0.1:6379', pids: [], stop: async () => {} }
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    pids: [proc.pid!],
    stop: async () => {
      proc.kill('SIGKILL')
      await exited(proc)
    },
  }
}

/** The servers' shared token secret (load/scenarios.ts signs device tokens with it). */
export const LOAD_JWT_SECRET = 'load-test-secret-load-test-secret-0123456789'

export interface Database {
  name: string
  url: string
  drop(): Promise<void>
}

export async function createDatabase(admin: postgres.Sql, pgUrl: string, prefix: string): Promise<Database> {
  const name = `${prefix}_${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`
  await admin.unsafe(`create database ${name}`)
  const url = new URL(pgUrl)
  url.pathname = '/' + name
  return { name, url: url.toString(), drop: async () => void (await admin.unsafe(`drop database if exists ${name} with (force)`)) }
}

export interface Instance {
  url: string
  proc: ChildProcess
}

export interface SystemUnderTest {
  peer: 'tasksync' | 'sharedb'
  instances: Instance[]
  db: Database
  /** kill -9 of instance i (storm). */
  kill(i: number): void
  stop(): Promise<void>
}

export interface TasksyncOptions {
  instances: number
  redisUrl: string
  inspect?: boolean
  poolSize: string
  /** The built server (dist/, the default: what is measured) or the sources through tsx (the smoke test: no build). */
  server: 'dist' | 'tsx'
}

export function ensureBuilt(): void {
  const r = spawnSync(process.execPath, ['scripts/ensure-build.mjs'], { cwd: REPO, stdio: 'inherit' })
  if (r.status !== 0) throw new Error('the build failed')
}

export async function startTasksync(admin: postgres.Sql, pgUrl: string, o: TasksyncOptions): Promise<SystemUnderTest> {
  const db = await createDatabase(admin, pgUrl, 'tasksync_load')
  const env = {
    ...process.env,
    NODE_ENV: 'production',
    DATABASE_URL: db.url,
    REDIS_URL: o.redisUrl,
    REDIS_PREFIX: `tasksync-load:${db.name}:`,
    JWT_SECRET: LOAD_JWT_SECRET,
    ACCESS_TOKEN_TTL_S: '3600',
    LOG_LEVEL: 'warn',
    AUTH_RATE_LIMIT_PER_MIN: '100000',
    WS_MAX_SOCKETS: '100000',
    // One op in flight per writer acks in a few ms on a quiet box: a writer may send more than the default 100 messages/s.
    WS_RATE_PER_S: '100000',
    WS_RATE_BURST: '100000',
    DATABASE_POOL_SIZE: o.poolSize,
    // Each SDK writer stamps its send time in a custom field of its own (load/sdk-worker.ts): hot has 50 and more on one task.
    LIMIT_CUSTOM_FIELDS: '1000',
  }
  const instances: Instance[] = []
  try {
    for (let i = 0; i < o.instances; i++) {
      // LOAD_PORT_BASE: instance i listens on base + i (load/events-bench.ts scrapes the first); free ports otherwise.
      const port = process.env.LOAD_PORT_BASE ? Number(process.env.LOAD_PORT_BASE) + i : await freePort()
      // LOAD_SERVER_ARGS: extra node flags for the servers, e.g. "--cpu-prof --cpu-prof-dir=load/results".
      const nodeArgs = (process.env.LOAD_SERVER_ARGS ?? '').split(' ').filter(Boolean)
      // idle forces a full GC (through the inspector) before each reading, so garbage does not count as memory per socket.
      if (o.inspect) nodeArgs.push(`--inspect=127.0.0.1:${9300 + i}`)
      const entry = o.server === 'dist' ? ['dist/src/server.js'] : ['--import', 'tsx', 'src/server.ts']
      const proc = spawn(process.execPath, [...nodeArgs, ...entry], {
        cwd: REPO,
        env: { ...env, PORT: String(port), INSTANCE_ID: `load-${i}` },
        stdio: ['ignore', 'inherit', 'inherit'],
      })
      instances.push({ url: `http://127.0.0.1:${port}`, proc })
    }
    for (const inst of instances) await waitHealthy(inst.url, inst.proc)
  } catch (err) {
    for (const inst of instances) inst.proc.kill('SIGKILL')
    await db.drop()
    throw err
  }
  return {
    peer: 'tasksync',
    instances,
    db,
    kill: (i) => instances[i].proc.kill('SIGKILL'),
    stop: async () => {
      for (const inst of instances) inst.proc.kill('SIGTERM')
      await Promise.all(instances.map((i) => exited(i.proc)))
      await db.drop()
    },
  }
}

/** Installs the peer (its own package.json and lockfile) on first use. */
export function ensureSharedbInstalled(): void {
  if (existsSync(`${SHAREDB_DIR}node_modules/sharedb/package.json`)) return
  console.log('[load] installing the ShareDB peer: npm ci --prefix load/peers/sharedb')
  const r = spawnSync('npm', ['ci', '--prefix', SHAREDB_DIR, '--no-audit', '--no-fund'], { stdio: 'inherit' })
  if (r.status !== 0) throw new Error('npm ci --prefix load/peers/sharedb failed')
}

export async function startSharedb(admin: postgres.Sql, pgUrl: string, o: { redisUrl: string; poolSize: string }): Promise<SystemUnderTest> {
  ensureSharedbInstalled()
  const db = await createDatabase(admin, pgUrl, 'sharedb_load')
  const sql = postgres(db.url, { max: 1, onnotice: () => {} })
  await sql.unsafe(readFileSync(`${SHAREDB_DIR}node_modules/sharedb-postgres/structure.sql`, 'utf8'))
  await sql.end()
  const proc = spawn(process.execPath, ['server.cjs'], {
    cwd: SHAREDB_DIR,
    env: { ...process.env, NODE_ENV: 'production', DATABASE_URL: db.url, REDIS_URL: o.redisUrl, REDIS_PREFIX: `sharedb-load:${db.name}`, DATABASE_POOL_SIZE: o.poolSize, PORT: '0' },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const port = await new Promise<number>((resolve, reject) => {
    let out = ''
    proc.stdout!.on('data', (d) => {
      out += d
      const m = /listening (\d+)/.exec(out)
      if (m) resolve(Number(m[1]))
    })
    proc.once('exit', (code) => reject(new Error(`the ShareDB server exited with ${code}`)))
  }).catch(async (err) => {
    await db.drop()
    throw err
  })
  const url = `http://127.0.0.1:${port}`
  await waitHealthy(url, proc)
  return {
    peer: 'sharedb',
    instances: [{ url, proc }],
    db,
    kill: () => proc.kill('SIGKILL'),
    stop: async () => {
      proc.kill('SIGTERM')
      await exited(proc)
      await db.drop()
    },
  }
}
