/**
 * A client speaking the WebSocket protocol by hand, as a careful client author
 * would from the contract alone: one mutation in flight, resent under the same
 * seq on every new socket until it is answered for good; a replica per task
 * built only from what the server sent (snapshots, ops in rev order, its own
 * acks with its op transformed past the ops before it), never optimistic.
 */
import WebSocket from 'ws'
import { contentFromInit, taskType } from '../../src/domain/index.js'
import type { TaskContent, TaskOp } from '../../src/domain/types.js'
import type { TaskInit } from '../../src/protocol/messages.js'
import type { History } from '../history.js'
import type { FaultProxy } from '../fault-proxy.js'
import type { Rng } from '../rng.js'
import { randomInit, randomOp } from '../ops.js'
import { DEFINITE, hashOf, type ChaosClient, type World } from '../world.js'

interface RawTask {
  rev: number
  content: TaskContent | null
  subscribed: boolean
  /** Ops received, by rev (what an own op is transformed past when its ack comes). */
  ops: Map<number, TaskOp>
}

interface Inflight {
  seq: number
  taskId: string
  kind: 'create' | 'op'
  op?: TaskOp
  init?: TaskInit
  baseRev: number
  /** The socket it was last sent on (null: to be sent). */
  sentOn: string | null
  sentAt: number
  attempts: number
}

const CONTENT_KEYS = ['title', 'description', 'status', 'priority', 'tags', 'assigneeId', 'dueAt', 'projectId', 'customFields', 'deleted'] as const
const contentOf = (s: Record<string, unknown>): TaskContent => Object.fromEntries(CONTENT_KEYS.map((k) => [k, s[k]])) as unknown as TaskContent
const tombstone = (): TaskContent => ({ ...taskType.create(), deleted: true })
/** Ops kept per task for transforming an own op (it is never further behind than this). */
const OPS_KEPT = 2000

export class RawClient implements ChaosClient {
  readonly clientId: string
  private seq = 0
  private ws: WebSocket | null = null
  private conn = ''
  private conns = 0
  private ready = false
  private readonly tasks = new Map<string, RawTask>()
  private inflight: Inflight | null = null
  private lastHeard = 0
  private heartbeatMs = 25_000
  private writing = true
  private closed = false
  private timers = new Set<NodeJS.Timeout>()
  private readonly history: History
  private readonly offCreated: () => void

  constructor(
    readonly name: string,
    private readonly rng: Rng,
    private readonly world: World,
    readonly proxy: FaultProxy,
    private readonly token: string,
    /** Most ms between two mutations. */
    private readonly thinkMs: number,
  ) {
    this.clientId = rng.uuid()
    this.history = world.history
    this.offCreated = world.onCreated((id) => this.open(id))
  }

  async start(): Promise<void> {
    for (const id of this.world.tasks.keys()) this.open(id)
    this.connect()
    this.every(250, () => this.watchdog())
    this.later(this.rng.int(0, this.thinkMs), () => this.step())
  }

  stopWriting(): void {
    this.writing = false
  }

  busy(): boolean {
    return this.inflight !== null
  }

  revs(): Map<string, number> {
    const out = new Map<string, number>()
    for (const [id, t] of this.tasks) out.set(id, t.subscribed || t.content?.deleted ? t.rev : -1)
    return out
  }

  recordFinal(): void {
    for (const [taskId, t] of this.tasks) if (t.content) this.history.add({ type: 'state', client: this.name, taskId, rev: t.rev, hash: hashOf(t.content), final: true })
  }

  async close(): Promise<void> {
    this.closed = true
    this.offCreated()
    for (const timer of this.timers) clearTimeout(timer)
    this.ws?.terminate()
  }

  // ── connection ──

  private open(taskId: string): void {
    if (this.tasks.has(taskId)) return
    this.tasks.set(taskId, { rev: 0, content: null, subscribed: false, ops: new Map() })
    if (this.ready) this.subscribe([taskId])
  }

  private connect(): void {
    if (this.closed) return
    const conn = `${this.name}#${++this.conns}`
    const ws = new WebSocket(`${this.proxy.urlFor('ws://x/')}ws`, { headers: { authorization: `Bearer ${this.token}` } })
    this.ws = ws
    this.conn = conn
    this.ready = false
    this.lastHeard = Date.now()
    ws.on('open', () => ws.send(JSON.stringify({ type: 'hello', clientId: this.clientId })))
    ws.on('message', (data) => {
      if (this.ws !== ws) return
      this.lastHeard = Date.now()
      this.onMessage(JSON.parse(data.toString()))
    })
    ws.on('ping', () => (this.lastHeard = Date.now()))
    ws.on('error', () => {})
    ws.on('close', () => {
      if (this.ws !== ws) return
      this.lost(`socket closed`)
    })
  }

  /** The socket is gone (or given up on): everything is resent on the next one. */
  private lost(why: string): void {
    const ws = this.ws
    this.ws = null
    this.ready = false
    ws?.terminate()
    for (const [taskId, t] of this.tasks) {
      if (t.subscribed) this.history.add({ type: 'subscribe', client: this.name, conn: this.conn, taskId, since: t.rev, end: true })
      t.subscribed = false
    }
    if (this.inflight && this.inflight.sentOn === this.conn) this.failed(this.inflight, 'disconnected', false)
    this.history.note(this.name, `${this.conn}: ${why}`)
    this.later(this.rng.int(50, 600), () => this.connect())
  }

  /** Pings after a quiet heartbeat; gives the socket up after two (or an op unanswered for long). */
  private watchdog(): void {
    if (!this.ws) return
    const quiet = Date.now() - this.lastHeard
    if (quiet > 2 * this.heartbeatMs + 500) return this.lost(`silent for ${quiet} ms`)
    if (this.ready && quiet > this.heartbeatMs) this.send({ type: 'ping' })
    const f = this.inflight
    if (f && f.sentOn === this.conn && Date.now() - f.sentAt > 10_000) this.lost(`no answer to seq ${f.seq} for 10 s`)
  }

  private send(msg: object): void {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(msg))
  }

  private subscribe(ids: string[]): void {
    const since: Record<string, number> = {}
    for (const id of ids) {
      const t = this.tasks.get(id)!
      if (t.content) since[id] = t.rev
      this.history.add({ type: 'subscribe', client: this.name, conn: this.conn, taskId: id, since: t.content ? t.rev : null })
    }
    this.send({ type: 'subscribe', taskIds: ids, since })
  }

  // ── messages ──

  private onMessage(m: Record<string, any>): void {
    const t = typeof m.taskId === 'string' ? this.tasks.get(m.taskId) : undefined
    const seen = (what: 'op' | 'snapshot' | 'ack' | 'deleted', rev: number, extra: object = {}) =>
      this.history.add({ type: 'observe', client: this.name, conn: this.conn, taskId: m.taskId, what, rev, t0: this.history.now(), ...extra })
    switch (m.type) {
      case 'welcome':
        this.history.note(this.name, `${this.conn}: welcome from ${m.instanceId}`)
        this.ready = true
        this.heartbeatMs = m.heartbeatMs
        this.subscribe([...this.tasks.keys()])
        // A create is not tied to a subscription: resend it at once.
        if (this.inflight?.kind === 'create') this.sendInflight()
        return
      case 'subscribed':
        for (const id of m.taskIds as string[]) {
          const x = this.tasks.get(id)
          if (x) x.subscribed = true
        }
        if (this.inflight && this.tasks.get(this.inflight.taskId)?.subscribed) this.sendInflight()
        return
      case 'snapshot':
        seen('snapshot', m.rev)
        if (!t) return
        t.content = contentOf(m.task)
        t.rev = m.rev
        t.ops.clear()
        this.recordState(m.taskId, t)
        return
      case 'task_deleted':
        seen('deleted', m.rev)
        if (!t) return
        this.world.deleted(m.taskId)
        t.content = tombstone()
        t.rev = m.rev
        this.recordState(m.taskId, t)
        // Its in-flight op may have committed before the delete: the server's answer to a resend says.
        if (this.inflight?.taskId === m.taskId) this.sendInflight()
        return
      case 'op':
        seen('op', m.rev, { clientId: m.clientId, seq: m.seq })
        return this.onOp(m, t)
      case 'ack':
        seen('ack', m.rev, { clientId: this.clientId, seq: m.seq, noop: m.noop === true })
        return this.onAck(m, t)
      case 'error':
        return this.onError(m)
      case 'sync_required':
        this.history.note(this.name, `${this.conn}: sync_required ${m.taskId ?? 'all'} (${m.reason})`)
        if (t) {
          t.subscribed = false
          this.subscribe([m.taskId])
        }
        return
    }
  }

  private onOp(m: Record<string, any>, t: RawTask | undefined): void {
    // (A replay comes before `subscribed`; before a base snapshot there is nothing to apply to.)
    if (!t || !t.content) return
    if (m.rev <= t.rev) return // a duplicate delivery: the checker reports it from the observation
    if (m.rev > t.rev + 1) return this.lost(`gap: op ${m.rev} of ${m.taskId} after ${t.rev}`)
    this.apply(m.taskId, t, m.rev, m.op)
    const f = this.inflight
    if (f && f.kind === 'op' && m.clientId === this.clientId && m.seq === f.seq) {
      // Its own op in a replay: committed while the answer was lost.
      this.acked(f, m.rev, false)
    }
  }

  private onAck(m: Record<string, any>, t: RawTask | undefined): void {
    const f = this.inflight
    if (!f || f.seq !== m.seq) return
    if (m.noop) return this.acked(f, m.rev, true)
    if (f.kind === 'create') {
      this.acked(f, m.rev, false)
      const x = this.tasks.get(f.taskId) ?? { rev: 0, content: null, subscribed: false, ops: new Map() }
      this.tasks.set(f.taskId, x)
      if (!x.content) {
        x.content = contentFromInit(f.init!)
        x.rev = 1
        this.recordState(f.taskId, x)
      }
      this.world.created(f.taskId)
      if (!x.subscribed && this.ready) this.subscribe([f.taskId])
      return
    }
    this.acked(f, m.rev, false)
    if (!t || !t.content) return
    if (m.rev !== t.rev + 1) {
      // Not in its place in the stream (the checker reports it): start over from the log.
      return this.lost(`ack of rev ${m.rev} for ${m.taskId} while at ${t.rev}`)
    }
    let a = f.op!
    for (let r = f.baseRev + 1; r < m.rev; r++) {
      const o = t.ops.get(r)
      if (!o) {
        this.history.note(this.name, `cannot rebuild ${m.taskId} at ${m.rev}: op ${r} unknown; reloading`)
        t.content = null
        t.rev = 0
        return this.lost('reload')
      }
      a = taskType.transform(a, o, 'left')
    }
    this.apply(m.taskId, t, m.rev, a)
  }

  private onError(m: Record<string, any>): void {
    const f = this.inflight
    if (f && m.seq === f.seq) {
      if (DEFINITE.has(m.code)) return this.failed(f, m.code, true)
      this.failed(f, m.code, false)
      f.sentOn = null
      this.later(this.rng.int(100, 1000), () => this.sendInflight())
      return
    }
    this.history.note(this.name, `${this.conn}: error ${m.code} ${m.message} (ref ${m.ref ?? '-'})`)
    // A subscription the server could not serve (storage down, say): asked again a moment later.
    const t = typeof m.ref === 'string' ? this.tasks.get(m.ref) : undefined
    if (t && m.seq === undefined && !t.subscribed) {
      const conn = this.conn
      this.later(this.rng.int(200, 1000), () => {
        if (this.ready && this.conn === conn && !t.subscribed) this.subscribe([m.ref])
      })
    }
  }

  private apply(taskId: string, t: RawTask, rev: number, op: TaskOp): void {
    t.content = taskType.apply(t.content!, op)
    t.rev = rev
    t.ops.set(rev, op)
    if (t.ops.size > OPS_KEPT) t.ops.delete(t.ops.keys().next().value!)
    if (t.content.deleted) this.world.deleted(taskId)
    this.recordState(taskId, t)
  }

  private recordState(taskId: string, t: RawTask): void {
    this.history.add({ type: 'state', client: this.name, taskId, rev: t.rev, hash: hashOf(t.content!) })
  }

  // ── mutations ──

  private step(): void {
    if (this.closed) return
    this.later(this.rng.int(10, this.thinkMs), () => this.step())
    if (!this.writing || !this.ready || this.inflight) return
    const live = [...this.tasks.entries()].filter(([, t]) => t.subscribed && t.content && !t.content.deleted)
    if (this.world.mayCreate() && this.rng.chance(0.03)) {
      const init = randomInit(this.rng)
      this.invoke({ seq: ++this.seq, taskId: this.rng.uuid(), kind: 'create', init, baseRev: 0, sentOn: null, sentAt: 0, attempts: 0 })
      return
    }
    if (live.length === 0) return
    const [taskId, t] = this.rng.pick(live)
    const op: TaskOp = this.world.mayDelete() && this.rng.chance(0.004) ? { delete: true } : randomOp(this.rng, t.content!)
    this.invoke({ seq: ++this.seq, taskId, kind: 'op', op, baseRev: t.rev, sentOn: null, sentAt: 0, attempts: 0 })
  }

  private invoke(f: Inflight): void {
    this.inflight = f
    this.sendInflight()
  }

  private sendInflight(): void {
    const f = this.inflight
    if (!f || !this.ready || f.sentOn === this.conn) return
    const t = this.tasks.get(f.taskId)
    if (f.kind === 'op' && !t?.subscribed && !t?.content?.deleted) return
    f.sentOn = this.conn
    f.sentAt = Date.now()
    const msg = f.kind === 'create'
      ? { type: 'create', taskId: f.taskId, seq: f.seq, task: f.init }
      : { type: 'op', taskId: f.taskId, seq: f.seq, baseRev: f.baseRev, op: f.op }
    this.history.add({
      type: 'invoke', client: this.name, writer: this.name, clientId: this.clientId, seq: f.seq, taskId: f.taskId, kind: f.kind,
      op: f.kind === 'create' ? f.init : f.op, baseRev: f.baseRev, via: 'ws', ...(f.attempts > 0 ? { resend: true } : {}),
    })
    f.attempts++
    this.send(msg)
  }

  private acked(f: Inflight, rev: number, noop: boolean): void {
    this.history.add({ type: 'ack', client: this.name, writer: this.name, clientId: this.clientId, seq: f.seq, taskId: f.taskId, rev, noop, via: 'ws' })
    if (this.inflight === f) this.inflight = null
  }

  private failed(f: Inflight, code: string, definite: boolean): void {
    this.history.add({ type: 'fail', client: this.name, writer: this.name, clientId: this.clientId, seq: f.seq, taskId: f.taskId, code, definite, via: 'ws' })
    if (definite && this.inflight === f) this.inflight = null
  }

  // ── timers ──

  private later(ms: number, fn: () => void): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer)
      if (!this.closed) fn()
    }, ms)
    this.timers.add(timer)
  }

  private every(ms: number, fn: () => void): void {
    const tick = () => {
      fn()
      this.later(ms, tick)
    }
    this.later(ms, tick)
  }
}
