/**
 * A client that never opens a socket: it pushes its mutations in small batches
 * with `POST /api/sync/push` (resending a batch under the same seqs until each
 * is answered for good) and keeps its replica with `GET /api/sync/pull`.
 */
import { taskType } from '../../src/domain/index.js'
import type { TaskContent, TaskOp, TaskSnapshot } from '../../src/domain/types.js'
import type { History } from '../history.js'
import type { FaultProxy } from '../fault-proxy.js'
import type { Rng } from '../rng.js'
import { randomInit, randomOp } from '../ops.js'
import { DEFINITE, hashOf, type ChaosClient, type World } from '../world.js'

interface Mutation {
  seq: number
  kind: 'create' | 'op'
  taskId: string
  baseRev?: number
  op?: TaskOp
  task?: Record<string, unknown>
}

interface PushResult {
  seq: number
  status: 'applied' | 'duplicate' | 'rejected'
  rev?: number
  noop?: true
  error?: { code: string; message: string }
}

const CONTENT_KEYS = ['title', 'description', 'status', 'priority', 'tags', 'assigneeId', 'dueAt', 'projectId', 'customFields', 'deleted'] as const
const contentOf = (s: Record<string, unknown>): TaskContent => Object.fromEntries(CONTENT_KEYS.map((k) => [k, s[k]])) as unknown as TaskContent
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

export class RestSyncClient implements ChaosClient {
  readonly clientId: string
  private seq = 0
  private cursor: string | undefined
  private readonly replica = new Map<string, { rev: number; content: TaskContent }>()
  /** Mutations sent and not answered for good: resent as they are. */
  private unanswered: Mutation[] = []
  private writing = true
  private closed = false
  private loop: Promise<void> | null = null
  private readonly history: History

  constructor(
    readonly name: string,
    private readonly rng: Rng,
    private readonly world: World,
    readonly proxy: FaultProxy,
    private readonly token: string,
    private readonly thinkMs: number,
  ) {
    this.clientId = rng.uuid()
    this.history = world.history
  }

  async start(): Promise<void> {
    this.loop = this.run()
  }

  stopWriting(): void {
    this.writing = false
  }

  busy(): boolean {
    return this.unanswered.length > 0
  }

  revs(): Map<string, number> {
    const out = new Map<string, number>()
    for (const id of this.world.tasks.keys()) out.set(id, this.replica.get(id)?.rev ?? -1)
    return out
  }

  recordFinal(): void {
    for (const [taskId, r] of this.replica) this.history.add({ type: 'state', client: this.name, taskId, rev: r.rev, hash: hashOf(r.content), final: true })
  }

  async close(): Promise<void> {
    this.closed = true
    await this.loop
  }

  private async run(): Promise<void> {
    while (!this.closed) {
      await sleep(this.rng.int(20, this.thinkMs))
      if (this.closed) return
      try {
        if (this.unanswered.length > 0) await this.push(this.unanswered)
        else if (this.writing && this.rng.chance(0.5)) await this.push(this.newBatch())
        else await this.pull()
      } catch (err) {
        this.history.note(this.name, `request failed: ${(err as Error).message}`)
      }
    }
  }

  private newBatch(): Mutation[] {
    const out: Mutation[] = []
    const live = [...this.replica.entries()].filter(([, r]) => !r.content.deleted)
    const n = this.rng.int(1, 3)
    for (let i = 0; i < n; i++) {
      if (this.world.mayCreate() && this.rng.chance(0.03)) {
        out.push({ seq: ++this.seq, kind: 'create', taskId: this.rng.uuid(), task: randomInit(this.rng) as Record<string, unknown> })
      } else if (live.length > 0) {
        const [taskId, r] = this.rng.pick(live)
        const op: TaskOp = this.world.mayDelete() && this.rng.chance(0.004) ? { delete: true } : randomOp(this.rng, r.content)
        out.push({ seq: ++this.seq, kind: 'op', taskId, baseRev: r.rev, op })
      }
    }
    return out
  }

  private async request(method: string, path: string, body?: unknown): Promise<Response> {
    return fetch(`${this.proxy.urlFor('http://x/')}${path.slice(1)}`, {
      method,
      headers: { authorization: `Bearer ${this.token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
      signal: AbortSignal.timeout(8000),
    })
  }

  private async push(batch: Mutation[]): Promise<void> {
    if (batch.length === 0) return
    const first = batch[0].seq === this.unanswered[0]?.seq
    for (const m of batch) {
      this.history.add({
        type: 'invoke', client: this.name, writer: this.name, clientId: this.clientId, seq: m.seq, taskId: m.taskId, kind: m.kind,
        op: m.kind === 'create' ? m.task : m.op, baseRev: m.baseRev, via: 'push', ...(first ? { resend: true } : {}),
      })
    }
    this.unanswered = batch
    let res: Response
    try {
      res = await this.request('POST', '/api/sync/push', { clientId: this.clientId, mutations: batch })
    } catch (err) {
      for (const m of batch) this.fail(m, 'network', false)
      return
    }
    const body = (await res.json().catch(() => null)) as { results?: PushResult[]; error?: { code: string; details?: { results?: PushResult[] } } } | null
    const results = res.ok ? body?.results ?? [] : body?.error?.details?.results ?? []
    const answered = new Set<number>()
    for (const r of results) {
      const m = batch.find((x) => x.seq === r.seq)
      if (!m) continue
      answered.add(r.seq)
      if (r.status === 'rejected') {
        const code = r.error?.code ?? 'rejected'
        this.fail(m, code, DEFINITE.has(code))
        if (!DEFINITE.has(code)) answered.delete(r.seq)
      } else {
        this.history.add({ type: 'ack', client: this.name, writer: this.name, clientId: this.clientId, seq: m.seq, taskId: m.taskId, rev: r.rev!, noop: r.noop === true, via: 'push' })
        if (m.kind === 'create') this.world.created(m.taskId)
      }
    }
    const rest = batch.filter((m) => !answered.has(m.seq))
    if (!res.ok) for (const m of rest) this.fail(m, body?.error?.code ?? `http ${res.status}`, false)
    this.unanswered = rest
  }

  private fail(m: Mutation, code: string, definite: boolean): void {
    this.history.add({ type: 'fail', client: this.name, writer: this.name, clientId: this.clientId, seq: m.seq, taskId: m.taskId, code, definite, via: 'push' })
  }

  /** One catch-up: every page from the cursor; then the replica of every task is what this client has read. */
  private async pull(): Promise<void> {
    const t0 = this.history.now()
    let cursor = this.cursor
    const seen: { snapshot?: TaskSnapshot; tombstone?: { id: string; rev?: number } }[] = []
    let reset = false
    for (let page = 0; page < 100; page++) {
      const res = await this.request('GET', `/api/sync/pull${cursor ? `?cursor=${encodeURIComponent(cursor)}` : ''}`)
      if (!res.ok) throw new Error(`pull answered ${res.status}`)
      const body = (await res.json()) as { reset?: true; tasks: TaskSnapshot[]; tombstones: { kind: string; id: string; rev?: number }[]; cursor: string; hasMore: boolean }
      if (body.reset) {
        reset = true
        cursor = undefined
        seen.length = 0
        continue
      }
      for (const s of body.tasks) seen.push({ snapshot: s })
      for (const d of body.tombstones) if (d.kind === 'task') seen.push({ tombstone: d })
      cursor = body.cursor
      if (!body.hasMore) break
    }
    if (reset) this.replica.clear()
    for (const x of seen) {
      const id = x.snapshot?.id ?? x.tombstone!.id
      this.history.add({ type: 'observe', client: this.name, conn: 'rest', taskId: id, what: 'read', rev: x.snapshot?.rev ?? x.tombstone!.rev ?? 0, t0 })
    }
    for (const x of seen) {
      if (x.snapshot) {
        const s = x.snapshot
        const r = this.replica.get(s.id)
        if (r && r.rev >= s.rev) continue
        this.replica.set(s.id, { rev: s.rev, content: contentOf(s as unknown as Record<string, unknown>) })
        this.history.add({ type: 'state', client: this.name, taskId: s.id, rev: s.rev, hash: hashOf(contentOf(s as unknown as Record<string, unknown>)) })
      } else if (x.tombstone) {
        const d = x.tombstone
        const r = this.replica.get(d.id)
        const rev = d.rev ?? r?.rev ?? 0
        if (r && r.rev >= rev && r.content.deleted) continue
        const content = { ...taskType.create(), deleted: true }
        this.replica.set(d.id, { rev, content })
        this.world.deleted(d.id)
        this.history.add({ type: 'state', client: this.name, taskId: d.id, rev, hash: hashOf(content) })
      }
    }
    this.cursor = cursor
    // What this client now holds of every task: a read that began at t0.
    for (const [taskId, r] of this.replica) this.history.add({ type: 'observe', client: this.name, conn: 'rest', taskId, what: 'view', rev: r.rev, t0 })
  }
}
