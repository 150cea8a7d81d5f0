/**
 * A client through the SDK (src/client): a TaskSyncClient on its own storage,
 * with its socket and its fetch recorded, so the history holds both what the
 * app saw (acks, states of its tasks) and what went over the wire (each
 * mutation sent, each op, snapshot and ack received, each subscription).
 * A tab-like second writer can be opened on the same storage for a while: it
 * is a writer of its own (its own slot, clientId and seqs); closed with edits
 * unsent, its queue is adopted and delivered by the first, whose sockets for
 * that are recorded under `<label>>adopted:<clientId>`.
 */
import WebSocket from 'ws'
import { TaskSyncClient, memoryStorage, type ClientStorage, type TaskHandle, type WebSocketLike } from '../../src/client/index.js'
import type { TaskContent } from '../../src/domain/types.js'
import type { History } from '../history.js'
import type { FaultProxy } from '../fault-proxy.js'
import type { Rng } from '../rng.js'
import { randomInit, randomOp } from '../ops.js'
import { DEFINITE, hashOf, type ChaosClient, type World } from '../world.js'

const CONTENT_KEYS = ['title', 'description', 'status', 'priority', 'tags', 'assigneeId', 'dueAt', 'projectId', 'customFields', 'deleted'] as const
const contentOf = (s: object): TaskContent => Object.fromEntries(CONTENT_KEYS.map((k) => [k, (s as Record<string, unknown>)[k]])) as unknown as TaskContent
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** One TaskSyncClient (an app install, or one tab) with its traffic recorded under `label`. */
class Writer {
  readonly client: TaskSyncClient
  private conns = 0
  private readonly sent = new Set<string>()
  private readonly lastState = new Map<string, string>()
  private readonly watched = new Set<TaskHandle>()
  private clientId = ''
  writing = true
  private closed = false
  private loop: Promise<void> | null = null

  constructor(
    readonly label: string,
    private readonly history: History,
    private readonly world: World,
    private readonly rng: Rng,
    proxy: FaultProxy,
    storage: ClientStorage,
    credentials: { email: string; password: string },
    private readonly thinkMs: number,
  ) {
    const base = proxy.urlFor('http://x/').replace(/\/$/, '')
    this.client = new TaskSyncClient({
      url: base,
      credentials,
      storage,
      WebSocket: this.socketClass(),
      fetch: (input, init) => this.fetch(String(input), init),
      backoff: { baseMs: 100, maxMs: 2000 },
    })
    this.client.on('conflict', (c) => this.history.note(this.label, `conflict ${c.kind} ${c.code ?? ''} on ${c.taskId}: ${c.message}`))
    this.client.on('error', (e) => this.history.note(this.label, `error: ${e.message}`))
  }

  async start(): Promise<void> {
    await this.client.connect()
    this.clientId = this.client.clientId
    for (const id of this.world.tasks.keys()) this.open(id)
    this.loop = this.run()
  }

  open(taskId: string): void {
    if (this.closed) return
    this.client.task(taskId).then((t) => this.watch(t), (err) => this.history.note(this.label, `open ${taskId}: ${(err as Error).message}`))
  }

  busy(): boolean {
    // (`pending` counts an adopted tab's queue too.)
    return this.client.status !== 'online' || this.client.pending > 0 || this.client.openTasks.some((t) => t.pending > 0)
  }

  revs(): Map<string, number> {
    const out = new Map<string, number>()
    for (const t of this.client.openTasks) out.set(t.id, t.loaded ? t.rev : -1)
    return out
  }

  recordFinal(): void {
    for (const t of this.client.openTasks) {
      if (!t.loaded || t.pending > 0) continue
      this.history.add({ type: 'state', client: this.label, taskId: t.id, rev: t.rev, hash: hashOf(contentOf(t.snapshot)), final: true })
    }
  }

  async close(): Promise<void> {
    this.closed = true
    this.writing = false
    await this.loop
    await this.client.close()
  }

  private watch(t: TaskHandle): void {
    if (this.watched.has(t)) return
    this.watched.add(t)
    const record = () => {
      if (!t.loaded || t.pending > 0) return
      const hash = hashOf(contentOf(t.snapshot))
      const key = `${t.rev}:${hash}`
      if (this.lastState.get(t.id) === key) return
      this.lastState.set(t.id, key)
      this.history.add({ type: 'state', client: this.label, taskId: t.id, rev: t.rev, hash })
      if (t.deleted) this.world.deleted(t.id)
    }
    t.on('change', record)
    t.on('deleted', record)
    // Acks are recorded from the wire (socket acks, push results), with the clientId they were sent under.
    t.on('ack', (a) => {
      if (a.rev === 1 && !a.noop) this.world.created(t.id)
      record()
    })
    record()
  }

  private async run(): Promise<void> {
    while (!this.closed) {
      await sleep(this.rng.int(10, this.thinkMs))
      if (!this.writing) continue
      try {
        this.step()
      } catch (err) {
        this.history.note(this.label, `local change refused: ${(err as Error).message}`)
      }
    }
  }

  private step(): void {
    if (this.world.mayCreate() && this.rng.chance(0.03)) {
      const t = this.client.createTask({ id: this.rng.uuid(), ...randomInit(this.rng) })
      this.watch(t)
      return
    }
    const live = this.client.openTasks.filter((t) => t.loaded && !t.deleted && t.rev > 0)
    if (live.length === 0) return
    const t = this.rng.pick(live)
    if (this.world.mayDelete() && this.rng.chance(0.004)) t.delete()
    else t.submit(randomOp(this.rng, contentOf(t.snapshot)))
  }

  // ── recording ──

  /** A WebSocket class whose instances record what they send and receive. */
  private socketClass(): new (url: string) => WebSocketLike {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const writer = this
    return class RecordedSocket implements WebSocketLike {
      private readonly ws: WebSocket
      readonly conn = `${writer.label}#${++writer.conns}`
      onopen: ((ev: unknown) => void) | null = null
      onmessage: ((ev: { data: unknown }) => void) | null = null
      onclose: ((ev: { code: number; reason?: string }) => void) | null = null
      onerror: ((ev: unknown) => void) | null = null

      constructor(url: string) {
        this.ws = new WebSocket(url)
        this.ws.onopen = (ev) => this.onopen?.(ev)
        this.ws.onerror = (ev) => this.onerror?.(ev)
        this.ws.onclose = (ev) => {
          writer.closedConn(this.conn)
          this.onclose?.(ev)
        }
        this.ws.onmessage = (ev) => {
          // Only what the SDK still listens to (not the tail of a socket it has given up).
          if (!this.onmessage) return
          writer.received(this.conn, String(ev.data))
          try {
            this.onmessage(ev)
          } catch (err) {
            // The SDK could not take the message (a broken server sends ops that do not apply): noted, the run goes on.
            writer.threw(err)
          }
        }
      }

      get readyState(): number {
        return this.ws.readyState
      }

      send(data: string): void {
        writer.sentMessage(this.conn, data)
        this.ws.send(data)
      }

      close(code?: number, reason?: string): void {
        this.ws.close(code, reason)
      }
    }
  }

  /** Who a socket speaks for: this writer, or a writer it adopted (a closed tab's queue, delivered under that tab's clientId). */
  private clientOf(conn: string): string {
    const id = this.helloOf.get(conn)
    return id && this.clientId && id !== this.clientId ? `${this.label}>adopted:${id.slice(0, 8)}` : this.label
  }

  private readonly subscribed = new Map<string, Set<string>>()
  /** The clientId each socket said hello with (a client may change it, or deliver another's queue). */
  private readonly helloOf = new Map<string, string>()

  private sentMessage(conn: string, data: string): void {
    const m = JSON.parse(data) as Record<string, any>
    if (m.type === 'hello') this.helloOf.set(conn, m.clientId)
    else if (m.type === 'op' || m.type === 'create') this.invoked(this.helloOf.get(conn) ?? this.clientId, m.seq, m.taskId, m.type, m.type === 'op' ? m.op : m.task, m.baseRev, 'ws', this.clientOf(conn))
    else if (m.type === 'subscribe') {
      const since = (m.since ?? {}) as Record<string, number>
      const subs = this.subscribed.get(conn) ?? new Set<string>()
      this.subscribed.set(conn, subs)
      for (const taskId of new Set([...(m.taskIds ?? []), ...Object.keys(since)])) {
        subs.add(taskId)
        this.history.add({ type: 'subscribe', client: this.clientOf(conn), conn, taskId, since: since[taskId] ?? null })
      }
    } else if (m.type === 'unsubscribe') {
      for (const taskId of m.taskIds ?? []) {
        this.subscribed.get(conn)?.delete(taskId)
        this.history.add({ type: 'subscribe', client: this.clientOf(conn), conn, taskId, since: null, end: true })
      }
    }
  }

  /** Who a push speaks for (an adopted writer's push carries that writer's clientId). */
  private pusher(clientId: string): string {
    return this.clientId && clientId !== this.clientId ? `${this.label}>adopted:${clientId.slice(0, 8)}` : this.label
  }

  threw(err: unknown): void {
    this.history.note(this.label, `the SDK threw on a server message: ${(err as Error)?.message ?? err}`)
  }

  private closedConn(conn: string): void {
    for (const taskId of this.subscribed.get(conn) ?? []) this.history.add({ type: 'subscribe', client: this.clientOf(conn), conn, taskId, since: null, end: true })
    this.subscribed.delete(conn)
  }

  private invoked(clientId: string, seq: number, taskId: string, kind: 'op' | 'create', op: unknown, baseRev: number | undefined, via: 'ws' | 'push', who = this.label): void {
    const resend = this.sent.has(`${clientId}:${seq}`)
    this.sent.add(`${clientId}:${seq}`)
    this.history.add({ type: 'invoke', client: who, writer: who, clientId, seq, taskId, kind, op, baseRev, via, ...(resend ? { resend: true } : {}) })
  }

  private received(conn: string, data: string): void {
    const m = JSON.parse(data) as Record<string, any>
    const who = this.clientOf(conn)
    const seen = (what: 'op' | 'snapshot' | 'ack' | 'deleted', rev: number, extra: object = {}) =>
      this.history.add({ type: 'observe', client: who, conn, taskId: m.taskId, what, rev, t0: this.history.now(), ...extra })
    if (m.type === 'op') seen('op', m.rev, { clientId: m.clientId, seq: m.seq })
    else if (m.type === 'snapshot') seen('snapshot', m.rev)
    else if (m.type === 'task_deleted') seen('deleted', m.rev)
    else if (m.type === 'ack' && m.commentId === undefined) {
      const clientId = this.helloOf.get(conn) ?? this.clientId
      seen('ack', m.rev, { clientId, seq: m.seq, noop: m.noop === true })
      this.history.add({ type: 'ack', client: who, writer: who, clientId, seq: m.seq, taskId: m.taskId, rev: m.rev, noop: m.noop === true, via: 'ws' })
    } else if (m.type === 'error' && typeof m.seq === 'number') {
      const clientId = this.helloOf.get(conn) ?? this.clientId
      this.history.add({ type: 'fail', client: who, writer: who, clientId, seq: m.seq, taskId: m.ref ?? '', code: m.code, definite: DEFINITE.has(m.code), via: 'ws' })
    } else if (m.type === 'sync_required') this.history.note(this.label, `${conn}: sync_required ${m.taskId ?? 'all'}`)
    else if (m.type === 'welcome') this.history.note(this.label, `${conn}: welcome from ${m.instanceId}`)
  }

  /** fetch with a timeout (a black-holed request must not hang the SDK for minutes), recording pushes and reads. */
  private async fetch(url: string, init?: RequestInit): Promise<Response> {
    const path = new URL(url).pathname
    const t0 = this.history.now()
    let pushed: { clientId: string; mutations: Record<string, any>[] } | null = null
    if (path === '/api/sync/push' && typeof init?.body === 'string') {
      pushed = JSON.parse(init.body) as { clientId: string; mutations: Record<string, any>[] }
      for (const m of pushed.mutations) if (m.kind !== 'comment') this.invoked(pushed.clientId, m.seq, m.taskId, m.kind, m.kind === 'op' ? m.op : m.task, m.baseRev, 'push', this.pusher(pushed.clientId))
    }
    const res = await fetch(url, { ...init, signal: AbortSignal.timeout(8000) })
    const read = /^\/api\/tasks\/([0-9a-f-]{36})$/.exec(path)
    if (read && res.ok && (init?.method ?? 'GET') === 'GET') {
      const snap = (await res.clone().json()) as { rev: number }
      this.history.add({ type: 'observe', client: this.label, conn: 'rest', taskId: read[1], what: 'read', rev: snap.rev, t0 })
    }
    if (pushed) {
      const body = (await res.clone().json().catch(() => null)) as { results?: Record<string, any>[]; error?: { details?: { results?: Record<string, any>[] } } } | null
      for (const r of body?.results ?? body?.error?.details?.results ?? []) {
        const m = pushed.mutations.find((x) => x.seq === r.seq)
        if (!m || m.kind === 'comment') continue
        const who = this.pusher(pushed.clientId)
        const base = { client: who, writer: who, clientId: pushed.clientId, seq: r.seq, taskId: m.taskId as string, via: 'push' as const }
        if (r.status === 'rejected') {
          const code = r.error?.code ?? 'rejected'
          this.history.add({ type: 'fail', ...base, code, definite: DEFINITE.has(code) })
        } else this.history.add({ type: 'ack', ...base, rev: r.rev, noop: r.noop === true })
      }
    }
    return res
  }
}

/** An app install through the SDK; tabs on its storage come and go. */
export class SdkClient implements ChaosClient {
  private readonly storage = memoryStorage()
  private readonly main: Writer
  private readonly tabs = new Set<Writer>()
  private tabCount = 0
  private readonly offCreated: () => void

  constructor(
    readonly name: string,
    private readonly rng: Rng,
    private readonly world: World,
    readonly proxy: FaultProxy,
    private readonly credentials: { email: string; password: string },
    private readonly thinkMs: number,
  ) {
    this.main = new Writer(name, world.history, world, rng.fork('main'), proxy, this.storage, credentials, thinkMs)
    this.offCreated = world.onCreated((id) => {
      this.main.open(id)
      for (const tab of this.tabs) tab.open(id)
    })
  }

  async start(): Promise<void> {
    await this.main.start()
  }

  stopWriting(): void {
    this.main.writing = false
    for (const tab of this.tabs) tab.writing = false
  }

  busy(): boolean {
    return this.main.busy() || [...this.tabs].some((t) => t.busy())
  }

  revs(): Map<string, number> {
    return this.main.revs()
  }

  recordFinal(): void {
    this.main.recordFinal()
  }

  /**
   * A second writer on this install's storage (a second browser tab, its own
   * writer slot) for `ms`: it writes like the first, then either settles and
   * closes, or is closed at once with its edits unsent (the first adopts and
   * delivers them).
   */
  async tab(ms: number): Promise<string> {
    const label = `${this.name}/tab${++this.tabCount}`
    const rng = this.rng.fork(label)
    const tab = new Writer(label, this.world.history, this.world, rng, this.proxy, this.storage, this.credentials, this.thinkMs)
    this.tabs.add(tab)
    try {
      await tab.start()
      await sleep(ms)
      tab.writing = false
      // Its states are checked against the log as it goes; the final comparison is for the writers that stay.
      if (rng.chance(0.5)) this.world.history.note(label, `closed with ${tab.client.pending} edits unsent`)
      else await tab.client.whenSynced({ timeoutMs: 30_000 }).catch((err) => this.world.history.note(label, `not synced before closing: ${(err as Error).message}`))
    } finally {
      this.tabs.delete(tab)
      await tab.close()
    }
    return label
  }

  async close(): Promise<void> {
    this.offCreated()
    await Promise.all([this.main.close(), ...[...this.tabs].map((t) => t.close())])
  }
}
