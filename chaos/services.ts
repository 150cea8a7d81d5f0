/**
 * The processes a chaos run owns: its own PostgreSQL (initdb into a temporary
 * folder, a free port), its own redis-server (a free port), and tasksync
 * instances. Restarting or killing them never touches the shared services
 * other tests use on 5432/6379.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process'
import { chownSync, existsSync, mkdtempSync, openSync, closeSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { createServer, connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import postgres from 'postgres'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** A free TCP port on 127.0.0.1 (free when asked; taken by the caller right after). */
export async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  await new Promise((resolve) => server.close(resolve))
  return port
}

/** Waits until `probe` resolves true, or throws naming `what` after `timeoutMs`. */
export async function waitUntil(probe: () => Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs
  for (;;) {
    if (await probe().catch(() => false)) return
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await sleep(100)
  }
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => child.once('exit', () => resolve()))
}

/** The newest PostgreSQL server binaries: $PG_BIN, else /usr/lib/postgresql/<newest>/bin. */
function postgresBin(): string {
  if (process.env.PG_BIN) return process.env.PG_BIN
  const root = '/usr/lib/postgresql'
  const versions = existsSync(root) ? readdirSync(root).filter((v) => existsSync(join(root, v, 'bin', 'initdb'))) : []
  if (versions.length === 0) throw new Error('no PostgreSQL server binaries under /usr/lib/postgresql/*/bin (set PG_BIN)')
  versions.sort((a, b) => Number(b) - Number(a))
  return join(root, versions[0], 'bin')
}

/**
 * PostgreSQL refuses to run as root: as root, the cluster belongs to the
 * `postgres` account (else `nobody`) and the server runs under it.
 */
function serverAccount(): { uid: number; gid: number } | null {
  if (process.getuid?.() !== 0) return null
  for (const name of ['postgres', 'nobody']) {
    try {
      const uid = Number(execFileSync('id', ['-u', name]).toString().trim())
      const gid = Number(execFileSync('id', ['-g', name]).toString().trim())
      return { uid, gid }
    } catch {
      /* no such account */
    }
  }
  throw new Error('running as root and neither a postgres nor a nobody account exists to run PostgreSQL')
}

/** A throwaway PostgreSQL cluster (fsync off: a process crash loses nothing, and the box is shared). */
export class LocalPostgres {
  private child: ChildProcess | null = null

  private constructor(
    readonly dir: string,
    readonly port: number,
    private readonly bin: string,
    private readonly account: { uid: number; gid: number } | null,
    private readonly logPath: string,
  ) {}

  /** initdb into a new folder of the system's temp dir (its own, so the server's account can reach it) and start. */
  static async create(logPath: string): Promise<LocalPostgres> {
    const bin = postgresBin()
    const account = serverAccount()
    const dir = mkdtempSync(join(tmpdir(), 'tasksync-chaos-pg-'))
    if (account) chownSync(dir, account.uid, account.gid)
    try {
      execFileSync(join(bin, 'initdb'), ['-D', join(dir, 'data'), '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync', '--no-instructions'], {
        stdio: ['ignore', 'ignore', 'pipe'],
        ...(account ?? {}),
      })
    } catch (err) {
      rmSync(dir, { recursive: true, force: true })
      throw new Error(`initdb failed: ${String((err as { stderr?: Buffer }).stderr ?? err)}`)
    }
    const pg = new LocalPostgres(dir, await freePort(), bin, account, logPath)
    await pg.start()
    return pg
  }

  url(database = 'postgres'): string {
    return `postgres://postgres@127.0.0.1:${this.port}/${database}`
  }

  get pid(): number | undefined {
    return this.child?.pid
  }

  async start(): Promise<void> {
    const log = openSync(this.logPath, 'a')
    this.child = spawn(
      join(this.bin, 'postgres'),
      ['-D', join(this.dir, 'data'), '-p', String(this.port), '-k', this.dir, '-c', 'listen_addresses=127.0.0.1',
        '-c', 'fsync=off', '-c', 'full_page_writes=off', '-c', 'synchronous_commit=on', '-c', 'max_connections=200', '-c', 'shared_buffers=32MB'],
      { stdio: ['ignore', log, log], ...(this.account ?? {}) },
    )
    closeSync(log)
    await waitUntil(() => this.ready(), `PostgreSQL on ${this.port}`)
  }

  /** fast: SIGINT (clients cut, clean shutdown); immediate: SIGQUIT (crash-like, recovery on start). */
  async stop(mode: 'fast' | 'immediate' = 'fast'): Promise<void> {
    const child = this.child
    if (!child) return
    child.kill(mode === 'fast' ? 'SIGINT' : 'SIGQUIT')
    await exited(child)
    this.child = null
    // The postmaster is gone; its backends follow within moments.
    await waitUntil(async () => !existsSync(join(this.dir, 'data', 'postmaster.pid')) || (await this.portClosed()), 'PostgreSQL to stop', 15_000).catch(() => {})
  }

  async restart(mode: 'fast' | 'immediate'): Promise<void> {
    await this.stop(mode)
    await this.start()
  }

  async destroy(): Promise<void> {
    await this.stop('fast').catch(() => {})
    rmSync(this.dir, { recursive: true, force: true })
  }

  private async ready(): Promise<boolean> {
    const sql = postgres(this.url(), { max: 1, connect_timeout: 2, onnotice: () => {} })
    try {
      await sql`select 1`
      return true
    } finally {
      await sql.end({ timeout: 1 })
    }
  }

  private portClosed(): Promise<boolean> {
    return new Promise((resolve) => {
      const s = connect(this.port, '127.0.0.1')
      s.once('connect', () => (s.destroy(), resolve(false)))
      s.once('error', () => resolve(true))
    })
  }
}

/** A throwaway redis-server: no persistence, so a restart starts empty (as a crash would). */
export class LocalRedis {
  private child: ChildProcess | null = null

  private constructor(readonly port: number, private readonly logPath: string) {}

  static async create(logPath: string): Promise<LocalRedis> {
    const redis = new LocalRedis(await freePort(), logPath)
    await redis.start()
    return redis
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`
  }

  get pid(): number | undefined {
    return this.child?.pid
  }

  async start(): Promise<void> {
    const log = openSync(this.logPath, 'a')
    this.child = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'no'], {
      stdio: ['ignore', log, log],
    })
    closeSync(log)
    await waitUntil(() => this.ping(), `Redis on ${this.port}`)
  }

  async stop(): Promise<void> {
    const child = this.child
    if (!child) return
    child.kill('SIGKILL')
    await exited(child)
    this.child = null
  }

  async restart(): Promise<void> {
    await this.stop()
    await this.start()
  }

  private ping(): Promise<boolean> {
    return new Promise((resolve) => {
      const s = connect(this.port, '127.0.0.1')
      s.once('connect', () => s.write('PING\r\n'))
      s.once('data', (d) => (s.destroy(), resolve(d.toString().startsWith('+PONG'))))
      s.once('error', () => resolve(false))
    })
  }
}

/** How instances are started: the built server (dist/) or the sources through tsx. */
export type ServerBuild = 'dist' | 'tsx'

/** One tasksync process on a fixed port, restartable in place. */
export class ServerInstance {
  private child: ChildProcess | null = null
  paused = false
  starts = 0
  /** Exits nobody asked for (a crash), with how the process ended. */
  readonly crashes: string[] = []
  /** Called on a crash (the run's supervisor restarts the instance, as systemd or Kubernetes would). */
  onCrash: ((how: string) => void) | null = null

  constructor(
    readonly name: string,
    readonly port: number,
    private readonly env: Record<string, string>,
    private readonly build: ServerBuild,
    private readonly logPath: string,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`
  }

  get running(): boolean {
    return this.child !== null
  }

  get pid(): number | undefined {
    return this.child?.pid
  }

  private starting: Promise<void> | null = null

  /** Starts the process (once: a start already under way, or a running process, is left as it is). */
  start(): Promise<void> {
    if (this.child) return Promise.resolve()
    return (this.starting ??= this.spawn().finally(() => (this.starting = null)))
  }

  private async spawn(): Promise<void> {
    const log = openSync(this.logPath, 'a')
    const args = this.build === 'dist' ? ['dist/src/server.js'] : ['--import', 'tsx', 'src/server.ts']
    this.child = spawn(process.execPath, args, { env: { ...process.env, ...this.env, PORT: String(this.port) }, stdio: ['ignore', log, log] })
    closeSync(log)
    this.starts++
    const child = this.child
    child.once('exit', (code, signal) => {
      if (this.child !== child) return
      this.child = null
      this.paused = false
      const how = signal ? `signal ${signal}` : `exit code ${code}`
      this.crashes.push(how)
      this.onCrash?.(how)
    })
    // (waitUntil takes a throwing probe as a "not yet": an exit at start is told apart here, at once.)
    const gone = () => child.exitCode !== null || child.signalCode !== null || this.child !== child
    await waitUntil(async () => gone() || (await fetch(`${this.url}/health`, { signal: AbortSignal.timeout(1000) })).ok, `${this.name} to answer /health`, 60_000)
    if (gone()) throw new Error(`${this.name} exited at start (${child.signalCode ? `signal ${child.signalCode}` : `code ${child.exitCode}`}); see ${this.logPath}:\n${tail(this.logPath)}`)
  }

  /** kill -9: no drain, no close frames. */
  async kill(): Promise<void> {
    const child = this.child
    if (!child) return
    this.child = null
    if (this.paused) child.kill('SIGCONT')
    this.paused = false
    child.kill('SIGKILL')
    await exited(child)
  }

  pause(): void {
    if (!this.child || this.paused) return
    this.child.kill('SIGSTOP')
    this.paused = true
  }

  resume(): void {
    if (!this.child || !this.paused) return
    this.child.kill('SIGCONT')
    this.paused = false
  }

  /** SIGTERM: the graceful drain. */
  async stop(): Promise<void> {
    const child = this.child
    if (!child) return
    this.resume()
    this.child = null
    child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
    await exited(child)
    clearTimeout(timer)
  }
}

function tail(path: string): string {
  try {
    return readFileSync(path, 'utf8').slice(-2000)
  } catch {
    return ''
  }
}
