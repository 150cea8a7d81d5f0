/**
 * Opens the database: PostgreSQL through postgres.js when DATABASE_URL is set,
 * otherwise embedded PGlite persisted under DATA_DIR. Both speak through drizzle;
 * `rows()` runs raw SQL on either and returns plain rows.
 */
import { spawn } from 'node:child_process'
import { existsSync, mkdirSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { setFlagsFromString } from 'node:v8'
import type { SQL } from 'drizzle-orm'
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core'
import * as schema from './schema.js'
import { lockDataDir, type DataDirLock } from './data-dir-lock.js'
import { ConnectionBreaker } from './breaker.js'

export type Schema = typeof schema
export type Db = PgDatabase<PgQueryResultHKT, Schema>
/** A drizzle transaction or the database itself: repositories accept either. */
export type Executor = Pick<Db, 'select' | 'insert' | 'update' | 'delete' | 'execute'>

export interface Database {
  db: Db
  kind: 'postgres' | 'pglite'
  /** The connection URL (postgres only). */
  url?: string
  /** Runs raw SQL and returns its rows on either driver. */
  rows<T = Record<string, unknown>>(query: SQL, exec?: Executor): Promise<T[]>
  /** True when a trivial query answers. */
  ping(): Promise<boolean>
  /**
   * PostgreSQL: runs a commit statement (named, prepared) on connections of its own,
   * COMMIT_CONNECTIONS of them, so commits never queue behind the pool's reads
   * (thousands of resumes or catch-up pulls at once). Absent on PGlite.
   */
  commitQuery?: <T>(text: string, params: unknown[]) => Promise<T[]>
  close(): Promise<void>
}

/** Connections kept for commit statements, besides the pool: the sequencer's commit concurrency. */
export const COMMIT_CONNECTIONS = 2

export interface OpenOptions {
  databaseUrl?: string
  dataDir: string
  poolSize?: number
  /** Run migrations at open (default true). */
  migrate?: boolean
  /** PostgreSQL: how long a new connection may take to hear from the server (default 1000 ms); see breaker.ts. */
  connectTimeoutMs?: number
  /** PostgreSQL: the connection breaker opened or closed. */
  onBreaker?: (state: 'open' | 'closed') => void
}

export const MIGRATIONS_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', ...(import.meta.url.includes('/dist/') ? ['..'] : []), 'drizzle')

/** Any constant: every instance takes this advisory lock while it migrates. */
const MIGRATION_LOCK = 7_240_311

export async function openDatabase(opts: OpenOptions): Promise<Database> {
  const database = opts.databaseUrl ? await openPostgres(opts.databaseUrl, opts.poolSize ?? 10, opts) : await openPglite(opts.dataDir)
  if (opts.migrate !== false) {
    // The first statement is the migration's: a database that does not answer is closed again, not leaked, so a caller may retry.
    await migrateDatabase(database).catch(async (err) => {
      await database.close().catch(() => {})
      throw err
    })
  }
  return database
}

function toRows<T>(result: unknown): T[] {
  if (Array.isArray(result)) return result as T[]
  return ((result as { rows?: T[] }).rows ?? []) as T[]
}

async function openPostgres(url: string, max: number, opts: OpenOptions): Promise<Database> {
  const { default: postgres } = await import('postgres')
  const { drizzle } = await import('drizzle-orm/postgres-js')
  const connectTimeoutMs = opts.connectTimeoutMs ?? 1000
  const target = tcpTarget(url)
  const breaker = target
    ? new ConnectionBreaker({
        ...target,
        connectTimeoutMs,
        probeMs: 250,
        onChange: opts.onBreaker,
        probe: async () => {
          const probe = postgres(url, { max: 1, onnotice: () => {}, connect_timeout: connectTimeoutMs / 1000, ...socketOption(() => breaker!.rawSocket()) })
          let timer: NodeJS.Timeout | undefined
          try {
            const late = new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('probe timed out')), 2 * connectTimeoutMs)))
            await Promise.race([probe`select 1`, late])
          } finally {
            clearTimeout(timer)
            await probe.end({ timeout: 0 }).catch(() => {})
          }
        },
      })
    : null
  const client = postgres(url, {
    max,
    onnotice: () => {},
    connect_timeout: 10,
    ...(breaker ? socketOption(breaker.socket) : {}),
    // Keep type parsing of timestamps as strings off: drizzle maps them.
  })
  const db = drizzle(client, { schema }) as unknown as Db
  // Opened on first use, like the pool's; a commit waits only for another commit.
  const commits = postgres(url, {
    max: COMMIT_CONNECTIONS,
    onnotice: () => {},
    connect_timeout: 10,
    ...(breaker ? socketOption(breaker.socket) : {}),
  })
  // drizzle sets the client's type parsers and serializers (timestamps and json pass through as text): the same on both.
  drizzle(commits, { schema })
  return {
    db,
    kind: 'postgres',
    url,
    commitQuery: async <T>(text: string, params: unknown[]) => [...(await commits.unsafe(text, params as never[], { prepare: true }))] as T[],
    rows: async (q, exec = db) => toRows(await exec.execute(q)),
    ping: async () => {
      try {
        await client`select 1`
        return true
      } catch {
        return false
      }
    },
    close: async () => {
      breaker?.stop()
      await Promise.all([client.end({ timeout: 5 }), commits.end({ timeout: 5 })])
    },
  }
}

/** postgres.js's `socket` option (a socket factory), missing from its types. */
const socketOption = (socket: () => unknown): object => ({ socket })

/** The one TCP host and port of a URL, or null (a Unix socket, several hosts): no breaker then. */
function tcpTarget(url: string): { host: string; port: number } | null {
  try {
    const u = new URL(url)
    if (!u.hostname || u.hostname.includes(',') || u.searchParams.has('host')) return null
    return { host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port || 5432) }
  } catch {
    return null
  }
}

/**
 * PGlite's own defaults size PostgreSQL for a server: shared_buffers of 128 MB
 * lives inside the WASM heap, which never shrinks. One embedded instance with a
 * single connection gets along with far less (load/embedded-memory.ts). wal_buffers
 * is pinned at what it was (by default 1/32 of shared_buffers: 4 MB), so a commit
 * writes its WAL exactly as before.
 */
const PGLITE_SETTINGS = ['-c', 'shared_buffers=16MB', '-c', 'wal_buffers=4MB']

/**
 * PGlite's PostgreSQL is a 9 MB WASM module. V8 compiles each function with its
 * baseline compiler (Liftoff) when first called, then recompiles the ones that run
 * often with its optimizing compiler (TurboFan) on background threads; those
 * compilations leave 50–65 MB more resident (optimized code and the compiler's
 * freed working memory, which the allocator keeps), already at start (initdb,
 * migrations) and more under load. No difference in CPU per transaction was
 * resolvable with baseline code only (docs/benchmarks.md, "Embedded default (PGlite)
 * memory"), so the optimizing tier is turned off for WebAssembly before the module
 * is compiled. It is a process-wide V8 flag that only concerns WebAssembly: besides
 * PGlite that is undici's small HTTP parser (webhook deliveries), which runs on
 * baseline code too in the embedded default.
 */
const WASM_FLAGS = '--liftoff-only'

/**
 * Creates a fresh PGlite data directory in a short-lived child process. initdb runs
 * in its own WASM instances (the initdb program and a second PostgreSQL), and
 * PGlite keeps their memory reachable after they close: done in process, a
 * first start stays at about 850 MB resident. The child's memory goes back to the
 * system when it exits.
 */
async function initPgliteDir(dir: string, startParams: string[]): Promise<void> {
  const entry = createRequire(import.meta.url).resolve('@electric-sql/pglite')
  const script = `const { PGlite } = require(process.argv[1]);
const db = new PGlite(process.argv[2], { startParams: JSON.parse(process.argv[3]) });
db.waitReady.then(() => db.close()).then(() => process.exit(0), (err) => { console.error(err && err.message); process.exit(1) });`
  const child = spawn(process.execPath, [WASM_FLAGS, '-e', script, entry, dir, JSON.stringify(startParams)], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject)
    child.on('exit', resolve)
  })
  if (code !== 0) throw new Error(`PGlite could not create its data directory ${dir}: ${stderr.trim() || `exit ${code}`}`)
}

async function openPglite(dataDir: string): Promise<Database> {
  setFlagsFromString(WASM_FLAGS)
  const { PGlite } = await import('@electric-sql/pglite')
  const { drizzle } = await import('drizzle-orm/pglite')
  const startParams = [...PGlite.defaultStartParams, ...PGLITE_SETTINGS]
  let client: InstanceType<typeof PGlite>
  let lock: DataDirLock | null = null
  if (dataDir === 'memory://') client = new PGlite({ startParams })
  else {
    const dir = join(dataDir, 'pglite')
    mkdirSync(dir, { recursive: true })
    // One process per data folder: a second one would write a store the first never sees.
    lock = lockDataDir(dataDir)
    try {
      if (!existsSync(join(dir, 'PG_VERSION'))) await initPgliteDir(dir, startParams)
    } catch (err) {
      lock.release()
      throw err
    }
    client = new PGlite(dir, { startParams })
  }
  try {
    await client.waitReady
  } catch (err) {
    lock?.release()
    throw err
  }
  const db = drizzle(client, { schema }) as unknown as Db
  return {
    db,
    kind: 'pglite',
    rows: async (q, exec = db) => toRows(await exec.execute(q)),
    ping: async () => {
      try {
        await client.query('select 1')
        return true
      } catch {
        return false
      }
    },
    close: async () => {
      try {
        await client.close()
      } finally {
        lock?.release()
      }
    },
  }
}

/** Applies drizzle/ migrations; safe when two instances start at once (advisory lock). */
export async function migrateDatabase(database: Database): Promise<void> {
  const config = { migrationsFolder: MIGRATIONS_DIR }
  if (database.kind === 'pglite') {
    const { migrate } = await import('drizzle-orm/pglite/migrator')
    await migrate(database.db as never, config)
    return
  }
  // One dedicated connection holds a session advisory lock for the whole run,
  // so a second instance starting at the same moment waits, then finds nothing to do.
  const { default: postgres } = await import('postgres')
  const { drizzle } = await import('drizzle-orm/postgres-js')
  const { migrate } = await import('drizzle-orm/postgres-js/migrator')
  const client = postgres(database.url!, { max: 1, onnotice: () => {} })
  try {
    await client`select pg_advisory_lock(${MIGRATION_LOCK})`
    await migrate(drizzle(client), config)
    await client`select pg_advisory_unlock(${MIGRATION_LOCK})`
  } finally {
    await client.end({ timeout: 5 })
  }
}
