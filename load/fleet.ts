/**
 * The generator side of a run: test data (an org and its tasks on tasksync,
 * docs on ShareDB) and the worker processes that hold the sockets, with the
 * IPC conversation of load/worker-loop.ts (init → ready, start, measure,
 * stop → result, cmd → cmd-result).
 */
import { fork, type ChildProcess } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { createRequire } from 'node:module'
import WebSocket from 'ws'
import { Histogram } from './histogram.js'
import type { SocketPlan } from './worker.js'
import type { Acked, View } from './worker-loop.js'

export type WorkerKind = 'raw' | 'sdk' | 'sharedb'

export async function json(url: string, init: RequestInit & { token?: string } = {}): Promise<any> {
  const headers: Record<string, string> = { 'content-type': 'application/json' }
  if (init.token) headers.authorization = `Bearer ${init.token}`
  const res = await fetch(url, { ...init, headers })
  const body = res.status === 204 ? null : await res.json()
  if (!res.ok) throw new Error(`${init.method ?? 'GET'} ${url} → ${res.status} ${JSON.stringify(body)}`)
  return body
}

/** An org, its owner's token and `count` tasks on tasksync. */
export async function setupOrg(url: string, count: number): Promise<{ token: string; taskIds: string[] }> {
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
  for (let i = 0; i < count; i += 20) {
    const batch = Array.from({ length: Math.min(20, count - i) }, (_, k) => {
      const id = randomUUID()
      taskIds.push(id)
      return json(`${url}/api/tasks`, { method: 'POST', token, body: JSON.stringify({ id, title: `load task ${i + k}` }) })
    })
    await Promise.all(batch)
  }
  return { token, taskIds }
}

/** `count` docs `{ title, lt }` on the ShareDB peer, created through its client. */
export async function setupDocs(url: string, count: number): Promise<string[]> {
  const peerRequire = createRequire(new URL('./peers/sharedb/package.json', import.meta.url))
  const { Connection } = peerRequire('sharedb/lib/client')
  const PeerWebSocket = peerRequire('ws') as typeof WebSocket
  const conn = new Connection(new PeerWebSocket(url.replace(/^http/, 'ws')))
  const ids = Array.from({ length: count }, () => randomUUID())
  await Promise.all(
    ids.map(
      (id, i) => new Promise<void>((resolve, reject) => conn.get('tasks', id).create({ title: `load task ${i}`, lt: 0 }, (err: Error | null) => (err ? reject(err) : resolve()))),
    ),
  )
  conn.close()
  return ids
}

export interface WorkerResult {
  acks: number
  delivered: number
  gaps: number
  errors: number
  presence: number
  comments: number
  errorSamples: string[]
  ack: Histogram
  fanout: Histogram
  views: View[]
  acked: Acked[]
}

export class Fleet {
  readonly procs: ChildProcess[]
  private readonly slices: SocketPlan[][]
  private cmdId = 0
  /** Running totals from the workers' progress messages. */
  private readonly last = new Map<ChildProcess, { acks: number; delivered: number; errors: number; ack: [number, number][]; fanout: [number, number][] }>()

  constructor(
    readonly kind: WorkerKind,
    plans: SocketPlan[],
    workers: number,
    /** Sockets of one task share a worker group index; the default spreads task t's socket k to worker (t + k) mod W. */
    perTask: number,
  ) {
    const n = Math.max(1, Math.min(workers, plans.length))
    this.slices = Array.from({ length: n }, () => [])
    plans.forEach((p, i) => this.slices[(Math.floor(i / perTask) + (i % perTask)) % n].push(p))
    // LOAD_WORKER_ARGS: extra node flags for the generator workers (e.g. --cpu-prof).
    const execArgv = ['--import', 'tsx', '--max-old-space-size=4096', ...(process.env.LOAD_WORKER_ARGS ?? '').split(' ').filter(Boolean)]
    const file = { raw: './worker.ts', sdk: './sdk-worker.ts', sharedb: './sharedb-worker.ts' }[kind]
    this.procs = this.slices.map((_, i) => fork(new URL(file, import.meta.url).pathname, [], { execArgv, env: { ...process.env, LOAD_WORKER_INDEX: String(i) } }))
    for (const p of this.procs)
      p.on('message', (m: any) => {
        if (m.type === 'progress') this.last.set(p, m)
      })
  }

  private waitFor<T>(proc: ChildProcess, match: (m: any) => boolean): Promise<T> {
    return new Promise((resolve, reject) => {
      const onMsg = (m: any) => {
        if (match(m)) {
          proc.off('message', onMsg)
          proc.off('exit', onExit)
          resolve(m)
        } else if (m.type === 'failed') reject(new Error(m.error))
      }
      const onExit = (code: number | null) => reject(new Error(`a ${this.kind} worker exited (${code})`))
      proc.on('message', onMsg)
      proc.once('exit', onExit)
    })
  }

  async open(recordAcks = false): Promise<void> {
    await Promise.all(this.procs.map((p, i) => (p.send({ type: 'init', sockets: this.slices[i], recordAcks }), this.waitFor(p, (m) => m.type === 'ready'))))
  }

  start(): void {
    for (const p of this.procs) p.send({ type: 'start' })
  }

  measure(): void {
    for (const p of this.procs) p.send({ type: 'measure' })
  }

  /** Totals so far and the measured window's latencies so far. */
  progress(): { acks: number; delivered: number; errors: number; ack: Histogram; fanout: Histogram } {
    let acks = 0
    let delivered = 0
    let errors = 0
    const ack = new Histogram()
    const fanout = new Histogram()
    for (const m of this.last.values()) {
      acks += m.acks
      delivered += m.delivered
      errors += m.errors
      ack.merge(Histogram.fromSparse(m.ack))
      fanout.merge(Histogram.fromSparse(m.fanout))
    }
    return { acks, delivered, errors, ack, fanout }
  }

  /** The same step in every worker; their answers. */
  async cmd<T>(name: string, args: Record<string, unknown> = {}): Promise<T[]> {
    const id = ++this.cmdId
    return Promise.all(
      this.procs.map(async (p) => {
        const wait = this.waitFor<any>(p, (m) => m.type === 'cmd-result' && m.id === id)
        p.send({ type: 'cmd', id, name, ...args })
        const r = await wait
        if (r.error) throw new Error(r.error)
        return r.result as T
      }),
    )
  }

  async stop(): Promise<WorkerResult> {
    const results = await Promise.all(this.procs.map((p) => (p.send({ type: 'stop' }), this.waitFor<any>(p, (m) => m.type === 'result'))))
    const out: WorkerResult = { acks: 0, delivered: 0, gaps: 0, errors: 0, presence: 0, comments: 0, errorSamples: [], ack: new Histogram(), fanout: new Histogram(), views: [], acked: [] }
    for (const r of results) {
      out.acks += r.acks
      out.delivered += r.delivered
      out.gaps += r.gaps
      out.errors += r.errors
      out.presence += r.presence ?? 0
      out.comments += r.comments ?? 0
      out.errorSamples.push(...r.errorSamples)
      out.ack.merge(Histogram.fromSparse(r.ack))
      out.fanout.merge(Histogram.fromSparse(r.fanout))
      out.views.push(...r.views)
      out.acked.push(...r.acked)
    }
    return out
  }

  kill(): void {
    for (const p of this.procs) if (p.exitCode === null) p.kill()
  }
}
