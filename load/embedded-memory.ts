/**
 * The embedded default's memory and commit rate: starts the real server
 * (`node dist/src/server.js`, no DATABASE_URL, so PGlite under a fresh DATA_DIR),
 * samples its RSS from /proc every 50 ms, and reports
 *   - peak RSS while starting (initdb + migrations on the first start),
 *   - idle RSS once it answers /health and has sat still for --idle seconds,
 *   - committed ops/s with --writers sockets on as many tasks, one op in flight each,
 *     for --seconds, the server's CPU time per committed op over that window (less
 *     sensitive to a busy machine than the rate), and the RSS peak/after that,
 *   - the same idle figure for a second start on the same DATA_DIR (--restart).
 *
 *   npx tsx load/embedded-memory.ts [--idle 5] [--seconds 10] [--writers 10] [--restart]
 *   npm run bench:embedded
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import WebSocket from 'ws'
import { cpuSeconds, rssBytes } from './proc.js'

const { values } = parseArgs({
  args: process.argv.slice(2).filter((a) => a !== '--'),
  options: {
    idle: { type: 'string', default: '5' },
    seconds: { type: 'string', default: '10' },
    writers: { type: 'string', default: '10' },
    restart: { type: 'boolean', default: false },
  },
})
const IDLE_S = Number(values.idle)
const SECONDS = Number(values.seconds)
const WRITERS = Number(values.writers)
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const mb = (b: number) => (b / 1024 / 1024).toFixed(0)

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.on('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port
      srv.close(() => resolve(port))
    })
  })
}

/** This process's environment without what would take the server off its embedded defaults. */
function embeddedEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env }
  delete env.DATABASE_URL
  delete env.REDIS_URL
  return env
}

/** A running server and its RSS samples. */
class Server {
  proc: ChildProcess
  peak = 0
  last = 0
  private timer: NodeJS.Timeout
  constructor(readonly url: string, dataDir: string, port: number) {
    this.proc = spawn(process.execPath, ['dist/src/server.js'], {
      env: {
        ...embeddedEnv(),
        NODE_ENV: 'development',
        DATA_DIR: dataDir,
        PORT: String(port),
        JWT_SECRET: 'embedded-bench-secret-embedded-bench-secret',
        LOG_LEVEL: 'warn',
        AUTH_RATE_LIMIT_PER_MIN: '10000',
        WS_RATE_PER_S: '100000',
        WS_RATE_BURST: '100000',
        HOUSEKEEPING_INTERVAL_S: '0',
      },
      stdio: ['ignore', 'inherit', 'inherit'],
    })
    this.timer = setInterval(() => this.sample(), 50)
  }
  sample(): number {
    const r = rssBytes(this.proc.pid!)
    if (r > 0) this.last = r
    this.peak = Math.max(this.peak, r)
    return r
  }
  async ready(): Promise<number> {
    const started = performance.now()
    for (;;) {
      try {
        if ((await fetch(`${this.url}/health`)).ok) return performance.now() - started
      } catch {
        /* not up yet */
      }
      if (this.proc.exitCode !== null) throw new Error(`server exited with ${this.proc.exitCode}`)
      await sleep(100)
    }
  }
  /** The median of RSS samples over `seconds` of quiet. */
  async idle(seconds: number): Promise<number> {
    const samples: number[] = []
    const end = Date.now() + seconds * 1000
    while (Date.now() < end) {
      samples.push(this.sample())
      await sleep(100)
    }
    samples.sort((a, b) => a - b)
    return samples[Math.floor(samples.length / 2)]
  }
  async stop(): Promise<void> {
    clearInterval(this.timer)
    if (this.proc.exitCode !== null) return
    const exited = new Promise((r) => this.proc.on('exit', r))
    this.proc.kill('SIGTERM')
    await exited
  }
}

async function post(url: string, body: unknown, token?: string): Promise<any> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  })
  const json = await res.json()
  if (!res.ok) throw new Error(`POST ${url} → ${res.status} ${JSON.stringify(json)}`)
  return json
}

/** WRITERS sockets, one task each, one title insert in flight each, for SECONDS: committed ops/s and the server's CPU ms per op. */
async function commitRate(base: string, pid: number): Promise<{ rate: number; cpuMsPerOp: number }> {
  const reg = await post(`${base}/api/auth/register`, {
    orgName: 'bench',
    email: `bench-${randomUUID()}@example.test`,
    password: 'bench-password-123',
    displayName: 'Bench',
    device: { name: 'bench', platform: 'node' },
  })
  const token: string = reg.accessToken
  const taskIds = Array.from({ length: WRITERS }, () => randomUUID())
  for (const id of taskIds) await post(`${base}/api/tasks`, { id, title: 'bench' }, token)
  let acked = 0
  let running = true
  const sockets = await Promise.all(
    taskIds.map(
      (taskId) =>
        new Promise<WebSocket>((resolve, reject) => {
          const ws = new WebSocket(`${base.replace('http', 'ws')}/ws`, { headers: { authorization: `Bearer ${token}` }, perMessageDeflate: false })
          let rev = 0
          let seq = 0
          const next = () => {
            if (!running) return
            seq++
            ws.send(JSON.stringify({ type: 'op', taskId, baseRev: rev, seq, op: { title: ['x'] } }))
          }
          ws.on('open', () => ws.send(JSON.stringify({ type: 'hello', clientId: randomUUID() })))
          ws.on('error', reject)
          ws.on('message', (raw) => {
            const m = JSON.parse(raw.toString())
            if (m.type === 'welcome') ws.send(JSON.stringify({ type: 'subscribe', taskIds: [taskId] }))
            else if (m.type === 'snapshot') rev = m.rev
            else if (m.type === 'subscribed') resolve(ws)
            else if (m.type === 'op') rev = m.rev
            else if (m.type === 'ack') {
              acked++
              rev = m.rev
              next()
            } else if (m.type === 'error') reject(new Error(`${m.code}: ${m.message}`))
          })
          ;(ws as WebSocket & { start?: () => void }).start = next
        }),
    ),
  )
  const started = performance.now()
  const cpuStart = cpuSeconds(pid)
  for (const ws of sockets) (ws as WebSocket & { start: () => void }).start()
  await sleep(SECONDS * 1000)
  running = false
  const cpu = cpuSeconds(pid) - cpuStart
  const done = acked
  const rate = done / ((performance.now() - started) / 1000)
  for (const ws of sockets) ws.close(1000)
  return { rate, cpuMsPerOp: (cpu * 1000) / done }
}

const build = spawnSync(process.execPath, ['scripts/ensure-build.mjs'], { stdio: 'inherit' })
if (build.status !== 0) throw new Error('build failed')

const dataDir = mkdtempSync(join(tmpdir(), 'tasksync-embedded-'))
const loadAtStart = loadavg()[0]
try {
  const port = await freePort()
  const base = `http://127.0.0.1:${port}`
  const first = new Server(base, dataDir, port)
  const startMs = await first.ready()
  const startPeak = first.peak
  const idle = await first.idle(IDLE_S)
  const { rate, cpuMsPerOp } = await commitRate(base, first.proc.pid!)
  const afterLoad = await first.idle(2)
  const loadPeak = first.peak
  await first.stop()
  const out: Record<string, string | number> = {
    firstStartS: (startMs / 1000).toFixed(1),
    startPeakMB: mb(startPeak),
    idleMB: mb(idle),
    commitsPerS: rate.toFixed(0),
    cpuMsPerCommit: cpuMsPerOp.toFixed(2),
    afterLoadMB: mb(afterLoad),
    peakMB: mb(loadPeak),
  }
  if (values.restart) {
    const again = new Server(base, dataDir, port)
    out.restartS = ((await again.ready()) / 1000).toFixed(1)
    out.restartIdleMB = mb(await again.idle(IDLE_S))
    out.restartPeakMB = mb(again.peak)
    await again.stop()
  }
  out.loadavg = `${loadAtStart.toFixed(1)} → ${loadavg()[0].toFixed(1)}`
  console.log(JSON.stringify(out))
} finally {
  rmSync(dataDir, { recursive: true, force: true })
}
