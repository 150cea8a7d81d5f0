/**
 * TaskSyncClient: the SDK entry. Owns the connection, the storage, the seq
 * counter and the open tasks; routes server messages to task handles; keeps the
 * comment outbox; catches up over REST when the socket cannot.
 */
import { TaskSyncError } from '../protocol/errors.js'
import type { Comment, ServerMessage, TaskInit } from '../protocol/messages.js'
import type { TaskSnapshot } from '../domain/types.js'
import { AuthSession, type Credentials } from './auth.js'
import type { BackoffOptions } from './backoff.js'
import type { UndoOptions } from './undo.js'
import { Connection, type WebSocketConstructor } from './connection.js'
import { Emitter } from './emitter.js'
import { RestClient, type FetchLike } from './http.js'
import { newId } from './ids.js'
import { AttachmentUploads, defaultSha256, type AttachSource, type Sha256Factory, type StoredSource } from './attachments.js'
import { memoryStorage, type ClientStorage } from './storage.js'
import { claimSlot, hasQueue, readSlot, slotsIn, slotStorage } from './slots.js'
import { processLocks, type WriterLease, type WriterLocks } from './writer-locks.js'
import { CommentOutbox } from './comment-outbox.js'
import { Persister } from './persister.js'
import { catchUpFromLog, commentMutationForPush, fetchSnapshot, pull, push, taskMutationForPush } from './sync.js'
import { TaskHandle, type TaskHost } from './task.js'
import { TaskWatch, type WatchHost, type WatchScope } from './watch.js'
import { creationSnapshot } from './content.js'
import type { ClientStatus, CommentMutation, ConflictEvent, SearchFilters, SearchHit, StoredMeta, StoredTask, TaskDiff } from './types.js'

/** Tasks per page when a watch lists its scope over REST (the server's largest page). */
const WATCH_PAGE = 500
/** The longest another client's op waits in memory before the task's confirmed copy is written (ms; see TaskHost.persistSoon). */
const PERSIST_SOON_MS = 250
/** Seqs reserved in storage at a time (a restart skips what is left of the block: seqs may jump). */
const SEQ_RESERVATION = 1000

/** Locks for storages that bring none: within this process, one registry per storage object. */
const fallbackLocks = new WeakMap<ClientStorage, WriterLocks>()
const locksOf = (storage: ClientStorage): WriterLocks => {
  if (storage.locks) return storage.locks
  let l = fallbackLocks.get(storage)
  if (!l) fallbackLocks.set(storage, (l = processLocks()))
  return l
}

/** @internal How a client delivering an adopted writer's queue is started (its slot's lock already held). */
interface AdoptedSlot {
  clientId: string
  lease: WriterLease
}

export interface TaskSyncClientOptions {
  /** Base URL of the server, e.g. `https://sync.example.com` (REST under /api, socket at /ws). */
  url: string
  /** Log in with email and password (tokens are refreshed by the SDK). */
  credentials?: Credentials
  /**
   * Or: the app supplies access tokens (called again before the current one expires):
   * tasksync's own, or the app's identity provider's (bring your own auth).
   */
  getAccessToken?: () => Promise<string>
  /**
   * With an identity provider's tokens (`getAccessToken`): the key naming this install as
   * one of the user's devices (sent as `X-Device-Key` and `device_key`; 1–128 visible
   * ASCII characters), e.g. an id the app keeps per install. Default: none, and all of
   * the user's installs are one device, `default` (writers adopting each other's queues
   * need their clientIds on one device; a per-install key must be stable across tabs).
   */
  deviceKey?: string
  /**
   * The writer id to use; by default each client takes a free writer slot of
   * `storage` (or makes one, with a fresh id). Refused with `already_exists`
   * while another live client of the storage writes as it.
   */
  clientId?: string
  /** Where the offline queue lives (default: memory, lost on restart). */
  storage?: ClientStorage
  /** WebSocket implementation (default: the global one; in Node pass the `ws` package's export). */
  WebSocket?: WebSocketConstructor
  /** fetch implementation (default: the global one). */
  fetch?: FetchLike
  /** Reconnect backoff (full jitter): first and largest ceiling in ms. */
  backoff?: BackoffOptions
  /** Overrides the heartbeat the server announces (ms): a `ping` after that much silence, reconnect after twice. */
  heartbeatMs?: number
  /** Resends after transient server errors (unavailable, internal, rate_limited): full-jitter backoff from `baseMs` (default 250), at most `attempts` (default 8), then the change is rolled back. */
  retry?: { baseMs?: number; attempts?: number }
  /** An absence longer than this (ms, default 10 min) is caught up over REST before resuming on the socket. */
  longAbsenceMs?: number
  /** Per-user undo: `pauseMs` (default 500) joins closer edits into one step; `limit` (200) steps kept per task. */
  undo?: UndoOptions
  /** SHA-256 of attachments (default: @noble/hashes; Node: `nodeSha256` from tasksync/client/node). */
  sha256?: Sha256Factory
  /** Finds the bytes of a queued attachment again after a restart (Node: `reopenFile`); small files are kept in storage. */
  reopenSource?: (s: StoredSource) => AttachSource | null
  /** Tasks per REST page when a watch lists its scope (1–500, default 500). */
  watchPageSize?: number
}

export interface ClientEvents {
  status: ClientStatus
  /** The number of local changes not yet acknowledged (`client.pending`) changed. */
  pending: number
  /** Every task's `conflict`, with its task id (also those found while restoring from storage). */
  conflict: ConflictEvent & { taskId: string }
  /** Non-fatal problems (storage failures, unexpected server errors, refused hello). */
  error: Error
  /** This client started delivering the queue of another writer of its storage that is gone (a closed tab). */
  adopted: { clientId: string }
  /** The adopted writer's queue is delivered (or this client closed first) and its slot free again. */
  delivered: { clientId: string }
}

export class TaskSyncClient extends Emitter<ClientEvents> {
  private readonly opts: TaskSyncClientOptions
  /** The storage as given: every writer slot of it. */
  private readonly storage: ClientStorage
  /** This client's slot of it (set by connect()). */
  private slotStore: ClientStorage | null = null
  private lease: WriterLease | null = null
  private readonly adopted: AdoptedSlot | undefined
  /** Writers whose lock this client waits for, to deliver their queue when they are gone. */
  private readonly watchingWriters = new Set<string>()
  private readonly stopWatching = new AbortController()
  private offAnnounce: (() => void) | null = null
  private readonly deliveries = new Set<TaskSyncClient>()
  private readonly auth: AuthSession
  private readonly rest: RestClient
  private conn: Connection | null = null
  private meta: StoredMeta | null = null
  /** The seq reservation known to be in storage (`StoredMeta.seqReserved`). */
  private seqReservedDurable = 0
  private readonly tasks = new Map<string, TaskHandle>()
  private readonly outbox: CommentOutbox
  private readonly persister: Persister
  private epochCounter = 0
  private readyEpoch = 0
  private currentStatus: ClientStatus = 'offline'
  private readonly catchingUp = new Set<string>()
  /** Tasks to reload from a snapshot once their running catch-up ends. */
  private readonly snapshotAfter = new Set<string>()
  /** Tasks whose queue is being pushed over REST: the socket must not send it meanwhile. */
  private readonly pushing = new Set<string>()
  /** Tasks whose in-flight mutation is in a push request not answered yet. */
  private readonly pushAwaited = new Set<string>()
  /** Tasks named by `sync_required` whose rev is being compared with the server's: nothing is sent meanwhile. */
  private readonly comparing = new Set<string>()
  /** Subscribes refused for a passing reason (unavailable), per task: the backoff of the next attempt. */
  private readonly subscribeRefusals = new Map<string, number>()
  /** Tasks the server stopped following for this socket (`sync_required`): subscribed again once caught up over REST. */
  private readonly resubscribeAfter = new Set<string>()
  private restSyncs = 0
  private lostAt = 0
  private closed = false
  private waiters: (() => void)[] = []
  /** Retry timers, cleared by close() so a Node process can exit at once. */
  private readonly timers = new Set<ReturnType<typeof setTimeout>>()
  private readonly host: TaskHost
  private readonly watches = new Set<TaskWatch>()
  private readonly watchHost: WatchHost
  /** Uploads (queued in storage) and the live attachment lists of tasks (attachments.ts). */
  readonly attachments: AttachmentUploads

  constructor(opts: TaskSyncClientOptions, adopted?: AdoptedSlot) {
    super()
    this.opts = opts
    this.adopted = adopted
    this.storage = opts.storage ?? memoryStorage()
    const fetchFn = opts.fetch ?? (globalThis.fetch?.bind(globalThis) as FetchLike | undefined)
    if (!fetchFn) throw new TypeError('TaskSyncClient: no fetch available; pass options.fetch')
    this.auth = new AuthSession({ baseUrl: opts.url, fetch: fetchFn, credentials: opts.credentials, getAccessToken: opts.getAccessToken })
    this.auth.onRenewed = (token) => this.conn?.send({ type: 'auth', token })
    const deviceHeaders = (): Record<string, string> => {
      const key = this.deviceKey()
      return key ? { 'x-device-key': key } : {}
    }
    this.rest = new RestClient(opts.url, fetchFn, () => this.auth.token(), deviceHeaders)
    this.attachments = new AttachmentUploads({
      baseUrl: opts.url,
      fetch: fetchFn,
      rest: this.rest,
      token: () => this.auth.token(),
      headers: deviceHeaders,
      storage: () => this.slotStore ?? this.storage,
      sha256: opts.sha256 ?? defaultSha256,
      reopen: opts.reopenSource,
      online: () => this.currentStatus === 'online' || this.currentStatus === 'syncing',
    })
    this.host = this.makeHost()
    this.watchHost = this.makeWatchHost()
    const slotWrites: ClientStorage = {
      load: () => this.slotStore!.load(),
      save: (changes) => this.slotStore!.save(changes),
    }
    this.persister = new Persister(slotWrites, (key) => this.storedValue(key), (err) => this.emit('error', err))
    this.outbox = new CommentOutbox({
      epoch: () => this.readyEpoch,
      send: (msg) => this.conn?.send(msg) ?? false,
      taskRev: (id) => this.tasks.get(id)?.rev,
      persist: () => {
        this.notePending()
        return this.persister.persist('comments')
      },
      retryLater: (attempt, fn) => this.retryLater(attempt, fn),
      freshSeq: () => this.host.freshSeq(),
      nextSeq: () => this.host.nextSeq(),
      rejected: (m, code, message) => this.tasks.get(m.taskId)?.commentRejected(m.commentId, m.prev, code, message),
      changed: () => this.wake(),
    })
  }

  // ---- public API ---------------------------------------------------------

  /** This install's id (known after `connect()`). */
  get clientId(): string {
    return this.requireMeta().clientId
  }

  /**
   * Local changes (task edits and comment changes) not yet acknowledged, those
   * of adopted writers (closed tabs) included; a `pending` event fires when it changes.
   */
  get pending(): number {
    let n = this.outbox.size
    for (const t of this.tasks.values()) n += t.pending
    for (const d of this.deliveries) n += d.pending
    return n
  }

  /** Connection state; a `status` event fires on every change. */
  get status(): ClientStatus {
    return this.currentStatus
  }

  /**
   * Loads the stored state (clientId, seq counter, open tasks and their unsent
   * changes) and starts connecting. Resolves once the stored state is loaded:
   * the client works offline from then on.
   */
  async connect(): Promise<void> {
    if (this.meta || this.lease) return
    const locks = locksOf(this.storage)
    const slot = this.adopted ?? (await claimSlot(this.storage, locks, this.opts.clientId))
    this.lease = slot.lease
    this.slotStore = slotStorage(this.storage, slot.clientId)
    let stored: Record<string, unknown>
    try {
      stored = await this.slotStore.load()
    } catch (err) {
      await slot.lease.release()
      this.lease = null
      throw err
    }
    const meta = stored.meta as StoredMeta | undefined
    this.meta = meta ?? { clientId: slot.clientId, seq: 0 }
    // Seqs up to the reservation may have gone out unwritten in an earlier life of this slot: go on past them.
    if ((this.meta.seqReserved ?? 0) > this.meta.seq) this.meta.seq = this.meta.seqReserved!
    this.seqReservedDurable = this.meta.seq
    this.attachments.restore(stored.attachments)
    if (!meta) this.persister.markDirty('meta')
    if (this.meta.deviceId) this.auth.deviceId ??= this.meta.deviceId
    for (const [key, value] of Object.entries(stored)) {
      if (!key.startsWith('task:') || !value) continue
      const kept = value as StoredTask
      // Delivering another writer's queue: only its tasks with unacknowledged changes.
      if (this.adopted && !kept.inflight && !kept.pending) continue
      const t = new TaskHandle(key.slice(5), this.host)
      t.restore(value as StoredTask)
      this.tasks.set(t.id, t)
    }
    const comments = (stored.comments as CommentMutation[] | undefined) ?? []
    this.outbox.restore(comments)
    // Unsent comment changes show again, in order, on top of what the server will send.
    for (const m of comments) {
      const t = this.tasks.get(m.taskId)
      const known = t?.comments.find((c) => c.id === m.commentId) ?? m.prev
      if (!t || (!known && m.action !== 'create')) continue
      const base = known ?? { id: m.commentId, taskId: m.taskId, parentId: m.parentId ?? null, authorId: '', body: '', createdAt: new Date().toISOString(), editedAt: null, editCount: 0, deleted: false }
      t.setComment({ ...base, body: m.body ?? base.body, deleted: m.action === 'delete' }, true)
    }
    if (!meta) await this.persister.persist('meta')
    this.conn = this.makeConnection()
    this.conn.start()
    if (!this.adopted) this.watchWriters(locks, [...slotsIn(await this.storage.load()).keys()])
  }

  /** Closes the socket and stops timers; resolves once every local change is durable in storage. */
  async close(): Promise<void> {
    this.closed = true
    this.attachments.close()
    this.stopWatching.abort()
    this.offAnnounce?.()
    this.conn?.stop()
    this.auth.close()
    for (const timer of this.timers) clearTimeout(timer)
    this.timers.clear()
    this.setStatus('offline')
    this.wake()
    await Promise.all([...this.deliveries].map((d) => d.close()))
    await this.persister.stop()
    // Only once everything is durable may another client take this writer's slot.
    await this.lease?.release()
    if (!this.adopted) await this.storage.close?.()
  }

  /** The app's offline switch: closes the socket and stays offline; local changes keep queueing. */
  goOffline(): void {
    this.conn?.stop()
    this.setStatus('offline')
  }

  /** Reconnects now (after `goOffline()`, or to skip a backoff wait). */
  goOnline(): void {
    if (this.closed) return
    this.conn?.restart()
  }

  /**
   * Creates a task locally (it shows at once, works offline) and queues its
   * creation. Throws InvalidOpError when the fields are invalid.
   */
  createTask(fields: TaskInit & { id?: string } = {}): TaskHandle {
    this.requireMeta()
    const { id = newId(), projectId = null, ...init } = fields
    if (this.tasks.has(id)) throw new TaskSyncError('already_exists', `task ${id} is already open`)
    const t = new TaskHandle(id, this.host)
    t.startCreate(init, projectId)
    this.tasks.set(id, t)
    this.opened(t)
    return t
  }

  /**
   * Opens a task: from storage if this client has it, else from the server.
   * Resolves once it is loaded (waits for a connection if needed); rejects
   * with `not_found` when it does not exist or is not visible.
   */
  task(id: string): Promise<TaskHandle> {
    this.requireMeta()
    let t = this.tasks.get(id)
    if (!t) {
      t = new TaskHandle(id, this.host)
      this.tasks.set(id, t)
      this.opened(t)
      this.subscribeTasks([t])
    }
    return t.ready()
  }

  /**
   * Follows the tasks of a project (`{projectId}`) or of the whole organization
   * (`{all: true}`) as they enter and leave it: `task` with the open handle of
   * each task found in the scope (already there, created there by anyone, moved
   * there), `leave` with the id of one moved elsewhere or deleted. The handles
   * are the client's ordinary open tasks and stay open after `leave` and
   * `close()`. Add listeners right away: the first events come after the
   * current synchronous code.
   */
  watch(scope: WatchScope): TaskWatch {
    this.requireMeta()
    const w = new TaskWatch(scope, this.watchHost)
    this.watches.add(w)
    queueMicrotask(() => w.start(this.tasks.values()))
    return w
  }

  /** The open tasks (loaded or loading). */
  get openTasks(): TaskHandle[] {
    return [...this.tasks.values()]
  }

  /** Stops following a task and forgets it locally; refused while it has unacknowledged changes. */
  release(id: string): Promise<void> {
    const t = this.tasks.get(id)
    if (!t) return Promise.resolve()
    if (!t.quiet) throw new TaskSyncError('bad_request', `task ${id} has unacknowledged changes`)
    t.open = false
    this.tasks.delete(id)
    for (const w of this.watches) w.untrack(id)
    this.conn?.send({ type: 'unsubscribe', taskIds: [id] })
    return this.persister.persist(`task:${id}`)
  }

  /**
   * Resolves when every local change is acknowledged and every open task is at
   * the server's latest rev (checked over REST). Waits through disconnects;
   * rejects after `timeoutMs` if given.
   */
  async whenSynced(opts: { timeoutMs?: number } = {}): Promise<void> {
    const deadline = opts.timeoutMs === undefined ? Infinity : Date.now() + opts.timeoutMs
    for (;;) {
      await this.until(() => this.settledLocally(), deadline)
      const behind: [TaskHandle, number][] = []
      for (const t of this.tasks.values()) {
        if (!t.loaded || t.missing) continue
        try {
          const snap = await this.rest.request<{ rev: number }>('GET', `/api/tasks/${t.id}`)
          if (snap.rev > t.rev) behind.push([t, snap.rev])
        } catch (err) {
          if (err instanceof TaskSyncError && (err.code === 'task_deleted' || err.code === 'not_found')) continue
          throw err
        }
      }
      if (behind.length === 0 && this.settledLocally()) return
      await this.until(() => behind.every(([t, rev]) => t.rev >= rev || !!t.missing), deadline)
    }
  }

  /** The task as it was at `rev` (bare snapshot, from the server); `rev_too_old` when its history no longer reaches back. */
  snapshotAt(taskId: string, rev: number): Promise<TaskSnapshot> {
    return this.rest.request('GET', `/api/tasks/${encodeURIComponent(taskId)}?rev=${rev}`)
  }

  /** Per changed field: its value at rev `from` and at rev `to`, and who changed it in between. */
  diff(taskId: string, from: number, to: number): Promise<TaskDiff> {
    return this.rest.request('GET', `/api/tasks/${encodeURIComponent(taskId)}/diff?from=${from}&to=${to}`)
  }

  /**
   * Full-text search of the organization's tasks (websearch syntax: words,
   * "a phrase", -excluded, or), best first; each hit carries `match.snippet`
   * (HTML-escaped, matches in <mark>). Pass `nextCursor` back for the next page.
   */
  searchTasks(q: string, filters: SearchFilters = {}): Promise<{ items: SearchHit[]; nextCursor: string | null }> {
    const params = new URLSearchParams({ q })
    for (const [k, v] of Object.entries(filters)) if (v !== undefined) params.set(k, String(v))
    return this.rest.request('GET', `/api/tasks?${params}`)
  }

  /** Loads a task's comments from the server into its handle (following every page). */
  async loadComments(task: TaskHandle): Promise<Comment[]> {
    let cursor: string | null = null
    const out: Comment[] = []
    do {
      const q: string = cursor ? `?cursor=${encodeURIComponent(cursor)}` : ''
      const page: { items: Comment[]; nextCursor: string | null } = await this.rest.request('GET', `/api/tasks/${task.id}/comments${q}`)
      out.push(...page.items)
      cursor = page.nextCursor
    } while (cursor)
    for (const c of out) task.onComment(c, this.outbox.has(c.id))
    return task.comments
  }

  // ---- other writers of the storage ---------------------------------------

  /**
   * Waits for the lock of every other writer of the storage (those there now
   * and those announced later): granted, it means that writer is gone (its tab
   * closed, its process ended) and its queue is delivered from here.
   */
  private watchWriters(locks: WriterLocks, ids: string[]): void {
    if (this.closed) return
    this.offAnnounce = locks.onAnnounce((id) => this.watchWriter(locks, id))
    for (const id of ids) this.watchWriter(locks, id)
  }

  private watchWriter(locks: WriterLocks, id: string): void {
    if (this.closed || id === this.meta?.clientId || this.watchingWriters.has(id)) return
    this.watchingWriters.add(id)
    locks.acquire(id, this.stopWatching.signal).then(
      (lease) => void this.deliverFor(id, lease),
      () => this.watchingWriters.delete(id),
    )
  }

  /**
   * Delivers the queue of a writer that is gone, as that writer: its clientId
   * and its seqs (a resend of what it already sent stays idempotent), through
   * a client of its own on that writer's slot. The slot is free again once the
   * queue is acknowledged (or when this client closes first).
   */
  private async deliverFor(clientId: string, lease: WriterLease): Promise<void> {
    let delivery: TaskSyncClient | null = null
    try {
      const slot = this.closed ? undefined : await readSlot(this.storage, clientId)
      if (!slot || !hasQueue(slot)) return
      // The server binds a clientId to the device that first used it: deliver from that device.
      const device = (slot.meta as StoredMeta).deviceId
      const creds = this.opts.credentials
      const auth =
        creds && device && device !== this.auth.deviceId
          ? { credentials: { ...creds, device: { ...creds.device, id: device } }, getAccessToken: undefined }
          : { credentials: undefined, getAccessToken: () => this.auth.token() }
      delivery = new TaskSyncClient({ ...this.opts, clientId, ...auth }, { clientId, lease })
      this.deliveries.add(delivery)
      delivery.on('conflict', (e) => this.emit('conflict', e))
      delivery.on('error', (e) => this.emit('error', e))
      delivery.on('pending', () => this.notePending())
      this.emit('adopted', { clientId })
      await delivery.connect()
      await delivery.delivered()
    } catch (err) {
      if (!this.closed) this.emit('error', new Error(`delivering the queue of writer ${clientId}: ${(err as Error).message}`))
    } finally {
      if (delivery) {
        await delivery.close()
        this.deliveries.delete(delivery)
        this.notePending()
        this.wake()
      }
      await lease.release()
      // Watched again once a client announces it takes the slot back.
      this.watchingWriters.delete(clientId)
      if (delivery) this.emit('delivered', { clientId })
    }
  }

  /** Resolves once nothing local waits for the server (the queue of an adopted writer is delivered). */
  private async delivered(): Promise<void> {
    await this.until(() => this.outbox.size === 0 && [...this.tasks.values()].every((t) => t.quiet || !!t.missing), Infinity)
  }

  // ---- status and waiting -----------------------------------------------

  private lastPending = 0
  private pendingCheck = false

  /** Emits `pending` once per burst of changes, when the count moved. */
  private notePending(): void {
    if (this.pendingCheck) return
    this.pendingCheck = true
    queueMicrotask(() => {
      this.pendingCheck = false
      const n = this.pending
      if (n === this.lastPending) return
      this.lastPending = n
      this.emit('pending', n)
    })
  }

  private setStatus(s: ClientStatus): void {
    if (s === this.currentStatus) return
    this.currentStatus = s
    this.emit('status', s)
    if (s === 'online') this.attachments.wake()
    this.wake()
  }

  private refreshStatus(): void {
    if (!this.conn?.isReady) return
    const resuming = [...this.tasks.values()].some((t) => t.wantsSubscription() && !t.isSubscribed())
    this.setStatus(resuming || this.catchingUp.size > 0 || this.restSyncs > 0 || this.comparing.size > 0 ? 'syncing' : 'online')
  }

  private settledLocally(): boolean {
    if (this.currentStatus !== 'online' || this.outbox.size > 0) return false
    // An adopted writer's queue is this client's to deliver: not synced before it is.
    if (this.deliveries.size > 0) return false
    for (const t of this.tasks.values()) if (!t.missing && (!t.quiet || (t.wantsSubscription() && !t.isSubscribed()))) return false
    return true
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w()
  }

  private async until(pred: () => boolean, deadline: number): Promise<void> {
    while (!pred()) {
      if (this.closed) throw new TaskSyncError('unavailable', 'client closed')
      const left = deadline - Date.now()
      if (left <= 0) throw new TaskSyncError('unavailable', 'whenSynced timed out')
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 1000))
        this.waiters.push(() => {
          clearTimeout(timer)
          resolve()
        })
      })
    }
  }

  // ---- connection ----------------------------------------------------------

  /**
   * With an identity provider's token the user id is not in the token (its `sub` is the
   * provider's): ask the server once. Best effort: edits still go through without it.
   */
  private async learnUserId(): Promise<void> {
    try {
      const me = await this.rest.request<{ id?: string }>('GET', '/api/users/me')
      if (typeof me?.id === 'string') this.auth.userId ??= me.id
    } catch {
      // Offline or refused: the socket attempt that follows reports it.
    }
  }

  /** The device key sent with an identity provider's tokens (none with credentials: tasksync's tokens name their device). */
  private deviceKey(): string | undefined {
    if (!this.opts.getAccessToken) return undefined
    return this.opts.deviceKey
  }

  private makeConnection(): Connection {
    const wsBase = this.opts.url.replace(/^http/, 'ws').replace(/\/$/, '')
    const WS = this.opts.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket
    if (!WS) throw new TypeError('TaskSyncClient: no WebSocket available; pass options.WebSocket (in Node: the ws package)')
    const deviceKey = this.deviceKey()
    return new Connection({
      url: `${wsBase}/ws${deviceKey ? `?device_key=${encodeURIComponent(deviceKey)}` : ''}`,
      WebSocket: WS,
      clientId: this.meta!.clientId,
      token: async (force) => {
        const t = await this.auth.token(force)
        if (this.auth.userId === undefined && this.opts.getAccessToken) await this.learnUserId()
        if (this.auth.deviceId && this.meta && this.meta.deviceId !== this.auth.deviceId) {
          this.meta.deviceId = this.auth.deviceId
          void this.persister.persist('meta')
        }
        return t
      },
      backoff: this.opts.backoff,
      heartbeatMs: this.opts.heartbeatMs,
      onConnecting: () => this.setStatus('connecting'),
      onReady: () => this.onReady(),
      onMessage: (msg) => this.onMessage(msg),
      onLost: () => this.onLost(),
      onError: (err) => this.emit('error', err),
    })
  }

  private onReady(): void {
    this.readyEpoch = ++this.epochCounter
    this.setStatus('syncing')
    const longAbsence = this.lostAt > 0 && Date.now() - this.lostAt > (this.opts.longAbsenceMs ?? 600_000)
    if (longAbsence) void this.syncOverRest([...this.tasks.values()])
    this.subscribeTasks([...this.tasks.values()])
    for (const w of this.watches) w.subscribe()
    for (const t of this.tasks.values()) t.flush()
    this.outbox.flush()
    this.refreshStatus()
  }

  private onLost(): void {
    this.readyEpoch = 0
    this.lostAt = Date.now()
    // A new socket subscribes every task anyway.
    this.resubscribeAfter.clear()
    for (const t of this.tasks.values()) t.disconnected()
    this.setStatus(this.closed ? 'offline' : 'connecting')
  }

  /** Subscribes (resuming with `since` where the client has a rev) on the ready socket. */
  private subscribeTasks(tasks: TaskHandle[]): void {
    if (!this.readyEpoch) return
    const resume: TaskHandle[] = []
    const fresh: TaskHandle[] = []
    for (const t of tasks) {
      if (!t.wantsSubscription() || t.isSubscribed()) continue
      ;(t.since() === undefined ? fresh : resume).push(t)
    }
    for (let i = 0; i < resume.length; i += 500) {
      const chunk = resume.slice(i, i + 500)
      const since: Record<string, number> = {}
      for (const t of chunk) since[t.id] = t.since()!
      this.conn!.send({ type: 'subscribe', taskIds: chunk.map((t) => t.id), since })
    }
    for (let i = 0; i < fresh.length; i += 500) this.conn!.send({ type: 'subscribe', taskIds: fresh.slice(i, i + 500).map((t) => t.id) })
  }

  private onMessage(msg: ServerMessage): void {
    const t = 'taskId' in msg && msg.taskId ? this.tasks.get(msg.taskId) : undefined
    switch (msg.type) {
      case 'subscribed':
        for (const id of msg.taskIds) {
          this.resubscribeAfter.delete(id)
          this.subscribeRefusals.delete(id)
          this.tasks.get(id)?.onSubscribed()
        }
        for (const w of this.watches) w.onSubscribed(msg.projectIds, msg.all)
        break
      case 'ack':
        if (msg.commentId !== undefined || (this.outbox.sentHead?.seq === msg.seq && t?.inflightSeq() !== msg.seq)) this.outbox.acked(msg.seq)
        else t?.onAck(msg.seq, msg.rev, msg.noop === true)
        break
      case 'op':
        if (t) t.onOp(msg)
        // A task created in a watched scope: its creation op is its whole rev 1, no read needed.
        else if (msg.rev === 1 && this.watches.size > 0) this.adopt([creationSnapshot(msg)])
        else if (!msg.op.delete) this.arrivedInScope(msg.taskId)
        break
      case 'snapshot':
        if (t) t.onSnapshot(msg.rev, msg.task)
        else if (this.watches.size > 0) this.adopt([{ ...msg.task, rev: msg.rev }])
        break
      case 'task_deleted':
        t?.onTaskDeleted(msg.rev)
        break
      case 'presence':
        t?.onPresence(msg.clientId, msg.userId, msg.state)
        break
      case 'comment':
        t?.onComment(msg.comment, this.outbox.has(msg.comment.id))
        break
      case 'attachment':
        this.attachments.onServer(msg.attachment)
        break
      case 'sync_required':
        // (For a task only a watched scope covers, which the client has not opened yet: open it.)
        if (msg.taskId && !t && this.watches.size > 0) this.arrivedInScope(msg.taskId)
        else {
          const named = msg.taskId ? (t ? [t] : []) : [...this.tasks.values()]
          // No longer followed on this socket (unless a `subscribed` naming it comes after).
          for (const x of named) this.resubscribeAfter.add(x.id)
          void this.onSyncRequired(named)
        }
        break
      case 'error':
        this.onServerError(msg)
        break
    }
    this.refreshStatus()
    this.wake()
  }

  /** Routes an error to the mutation or subscription it answers (by seq, task id or comment id in `ref`). */
  private onServerError(msg: Extract<ServerMessage, { type: 'error' }>): void {
    // A refused token: reconnect with a fresh one (what was in flight is resent there).
    if (msg.code === 'unauthorized') return this.conn?.reconnect('token refused', true)
    // The gateway names the mutation by `seq` (and its task by `ref`, or the seq itself for already_exists); a numeric ref is taken as a seq too.
    const ref = msg.ref === undefined ? undefined : String(msg.ref)
    const given = (msg as { seq?: unknown }).seq
    const seq = typeof given === 'number' ? given : ref !== undefined && /^\d+$/.test(ref) ? Number(ref) : undefined
    const head = this.outbox.sentHead
    if (head && (seq === head.seq || ref === head.commentId)) return this.outbox.failed(msg.code, msg.message)
    const watches = ref ? [...this.watches].filter((w) => w.projectId === ref) : []
    if (watches.length > 0) {
      for (const w of watches) w.refused(new TaskSyncError(msg.code, `server: ${msg.message} (project ${ref})`))
      return
    }
    let task = ref ? this.tasks.get(ref) : undefined
    if (!task && seq !== undefined) task = [...this.tasks.values()].find((x) => x.inflightSeq() === seq)
    if (task && seq === undefined && !task.isSubscribed() && task.inflightSeq() === undefined && (msg.code === 'unavailable' || msg.code === 'internal')) {
      // The subscribe's read failed for a passing reason (storage down): ask again, with backoff, for as long as this socket lasts.
      return this.resubscribeLater(task)
    }
    if (task) {
      if (seq !== undefined && task.inflightSeq() === seq) return task.onRejected(msg.code, msg.message)
      if (msg.code === 'not_found' && !task.isSubscribed()) return task.onMissing(msg.message)
      if (seq === undefined && task.inflightSeq() !== undefined) return task.onRejected(msg.code, msg.message)
      if (head && head.taskId === task.id) return this.outbox.failed(msg.code, msg.message)
      if (msg.code === 'not_found') return task.onMissing(msg.message)
    }
    // A message dropped by the rate limit cannot be named: resume on a new socket, which resends everything unanswered.
    if (msg.code === 'rate_limited' && seq === undefined) this.conn?.reconnect('rate limited')
    this.emit('error', new TaskSyncError(msg.code, `server: ${msg.message}${ref ? ` (ref ${ref})` : ''}`))
  }

  /** Subscribes the task again after a backoff that grows per refusal (never giving up while the socket lasts). */
  private resubscribeLater(task: TaskHandle): void {
    const epoch = this.readyEpoch
    const attempt = (this.subscribeRefusals.get(task.id) ?? 0) + 1
    this.subscribeRefusals.set(task.id, attempt)
    this.retryLater(Math.min(attempt, 6), () => {
      if (this.readyEpoch === epoch && task.open && !task.isSubscribed()) this.subscribeTasks([task])
    })
  }

  /** Runs `fn` after a full-jitter delay for `attempt`; false when attempts are used up. */
  private retryLater(attempt: number, fn: () => void): boolean {
    const { baseMs = 250, attempts = 8 } = this.opts.retry ?? {}
    if (attempt > attempts) return false
    const timer = setTimeout(() => {
      this.timers.delete(timer)
      if (!this.closed) fn()
    }, Math.random() * Math.min(10_000, baseMs * 2 ** attempt))
    this.timers.add(timer)
    return true
  }

  // ---- catching up ------------------------------------------------------------

  /** Catches one task up from the op log (or a fresh snapshot then the log); the socket is the fallback. */
  private resync(t: TaskHandle, how: 'log' | 'snapshot'): void {
    // A snapshot asked for during another catch-up is fetched right after it.
    if (this.catchingUp.has(t.id) && how === 'snapshot') this.snapshotAfter.add(t.id)
    if (this.catchingUp.has(t.id) || this.closed) return
    this.catchingUp.add(t.id)
    this.refreshStatus()
    void (async () => {
      let ok = true
      if (how === 'snapshot') ok = (await fetchSnapshot(this.rest, t)) !== 'failed'
      if (ok && !t.missing) ok = await catchUpFromLog(this.rest, t)
      this.catchingUp.delete(t.id)
      if (this.snapshotAfter.delete(t.id) || (t.diverged && how === 'log')) {
        this.resync(t, 'snapshot')
        return
      }
      if (!ok && t.diverged && t.open && !this.closed) {
        // The snapshot could not be read: try again later (the socket cannot help a copy that diverged).
        this.retryLater(3, () => this.resync(t, 'snapshot'))
        return
      }
      const again = this.resubscribeAfter.delete(t.id)
      if (!ok && this.readyEpoch && t.open) {
        // REST could not help: resubscribe on the socket (a replay, or a snapshot).
        this.conn!.send({ type: 'unsubscribe', taskIds: [t.id] })
        t.resubscribing()
        this.subscribeTasks([t])
      } else if (again && this.readyEpoch && t.open) {
        // Caught up after `sync_required`: the server no longer follows the task for this socket.
        t.resubscribing()
        this.subscribeTasks([t])
      }
      t.flush()
      this.refreshStatus()
      this.wake()
    })()
  }

  /**
   * `sync_required`: the socket cannot resume these tasks. A task the server holds
   * at an older rev than this client (restored from a backup: the op at the
   * client's rev is not in its log) takes the server's snapshot, keeps its
   * unacknowledged changes rebased onto it, and is subscribed again from there;
   * the others catch up over REST (push, pull, op log).
   */
  private async onSyncRequired(tasks: TaskHandle[]): Promise<void> {
    const ahead: TaskHandle[] = []
    const others: TaskHandle[] = []
    const fresh = tasks.filter((t) => !this.comparing.has(t.id))
    for (const t of fresh) this.comparing.add(t.id)
    this.refreshStatus()
    try {
      for (const t of fresh) {
        const snap = await this.serverCopyIfBehind(t)
        if (!snap || this.closed) {
          others.push(t)
          continue
        }
        const rev = t.rev
        const kept = t.onServerBehind(snap)
        ahead.push(t)
        this.emit('error', new TaskSyncError('internal', `task ${t.id}: the server holds it at rev ${snap.rev}, behind this client's rev ${rev} (restored from a backup?): the server's state is taken, ${kept} unacknowledged change(s) kept and sent again`))
      }
    } finally {
      for (const t of fresh) this.comparing.delete(t.id)
    }
    if (ahead.length > 0) {
      // Changes the server issued cursors for may be gone too: the next pull starts over.
      this.meta!.pullCursor = undefined
      void this.persister.persist('meta')
      for (const t of ahead) {
        this.resubscribeAfter.delete(t.id)
        t.resubscribing()
        t.flush()
      }
      this.subscribeTasks(ahead)
    }
    if (others.length > 0) await this.syncOverRest(others)
    this.refreshStatus()
    this.wake()
  }

  /** The server's snapshot of `t` when it is at an older rev than this client's; null otherwise or when it cannot be told. */
  private async serverCopyIfBehind(t: TaskHandle): Promise<TaskSnapshot | null> {
    if (!t.loaded || t.rev === 0 || t.missing || t.deleted) return null
    try {
      // The op at the client's rev: the server has it unless it is behind (or trimmed it: rev_too_old, not behind).
      const page = await this.rest.request<{ ops: unknown[] }>('GET', `/api/tasks/${t.id}/ops?from=${t.rev}&limit=1`)
      if (page.ops.length > 0) return null
      const snap = await this.rest.request<TaskSnapshot>('GET', `/api/tasks/${t.id}`)
      return !snap.deleted && snap.rev < t.rev ? snap : null
    } catch {
      return null
    }
  }

  /**
   * After `sync_required` or a long absence: push the offline queue over REST,
   * pull what changed, then catch every task up from its op log. Where the sync
   * endpoints are absent, the socket resends and resumes instead.
   */
  private async syncOverRest(all: TaskHandle[]): Promise<void> {
    // Tasks already in another REST sync are left to it: one seq must never be pushed twice at once.
    const tasks = all.filter((t) => !this.pushing.has(t.id))
    const pushComments = !this.outbox.paused
    this.restSyncs++
    for (const t of tasks) this.pushing.add(t.id)
    this.refreshStatus()
    try {
      // A snapshot coming from here on waits for the push's answer (TaskHandle.onSnapshot).
      for (const t of tasks) this.pushAwaited.add(t.id)
      // An offline queue whose first op never left: pushed as one mutation (written first).
      const folds = tasks.map((t) => t.foldUnsent()).filter((p) => p !== null)
      if (folds.length > 0) await Promise.all(folds)
      const mutations = tasks.flatMap((t) => t.pushable())
      for (const m of mutations) m.task.markPushed(m.mutation.seq)
      const comments = pushComments ? this.outbox.pushable() : []
      if (pushComments) this.outbox.paused = comments.length > 0
      const results = await push(this.rest, this.clientId, [...mutations.map((m) => taskMutationForPush(m.task.id, m.mutation, m.baseRev)), ...comments.map(commentMutationForPush)])
      for (const r of results ?? []) {
        const owner = mutations.find((m) => m.mutation.seq === r.seq)
        if (owner) {
          if (r.status === 'rejected') owner.task.onRejected(r.error?.code ?? 'bad_request', r.error?.message ?? 'rejected by push')
          else {
            // A push names an op that committed nothing `noop`: without it, the op is committed at `rev`.
            if (r.rev !== undefined && !r.noop) owner.task.onPushCommitted(r.seq, r.rev)
            owner.task.onAck(r.seq, r.rev, false, true)
          }
        } else if (comments[0]?.seq === r.seq) {
          comments.shift()
          if (r.status === 'rejected') this.outbox.failed(r.error?.code ?? 'bad_request', r.error?.message ?? 'rejected by push')
          else this.outbox.acked(r.seq)
        }
      }
      // Snapshots that came during the push (a resume past the replay window): taken now if the push committed the op.
      for (const t of tasks) this.pushAwaited.delete(t.id)
      const snapshotted = new Set(tasks.filter((t) => t.pushEnded()))
      if (pushComments && this.outbox.paused) {
        this.outbox.paused = false
        this.outbox.flush()
      }
      const changes = await pull(this.rest, this.meta!.pullCursor)
      if (changes) {
        for (const s of changes.tasks) {
          const t = this.tasks.get(s.id)
          if (t && t.quiet && s.rev > t.rev) t.onSnapshot(s.rev, s)
          else if (t && s.rev > t.rev && t.takeSnapshotAfterPush(s)) snapshotted.add(t)
        }
        for (const d of changes.tombstones) if (d.kind === 'task') this.tasks.get(d.id)?.onTaskDeleted(d.rev ?? 0)
        for (const c of changes.comments) this.tasks.get(c.taskId)?.onComment(c, this.outbox.has(c.id))
        this.meta!.pullCursor = changes.cursor
        void this.persister.persist('meta')
      }
      for (const t of tasks) this.pushing.delete(t.id)
      // (A task that took the socket's snapshot follows the stream from it: no log to read.)
      for (const t of tasks) if (t.loaded && !t.missing && !(snapshotted.has(t) && t.isSubscribed())) this.resync(t, 'log')
    } finally {
      for (const t of tasks) {
        this.pushAwaited.delete(t.id)
        t.pushEnded()
      }
      if (pushComments && this.outbox.paused) {
        this.outbox.paused = false
        this.outbox.flush()
      }
      for (const t of tasks) {
        if (this.pushing.delete(t.id)) t.flush()
      }
      this.restSyncs--
      this.refreshStatus()
      this.wake()
    }
  }

  // ---- watches ------------------------------------------------------------------

  /** A task handle joined the open tasks: every watch follows it. */
  private opened(t: TaskHandle): void {
    for (const w of this.watches) w.track(t)
  }

  /**
   * The server sent something about a task that is not open: only a watched
   * scope makes it do that, so open the task (subscribed by id, loaded from a snapshot).
   */
  private arrivedInScope(taskId: string): void {
    if (this.watches.size === 0 || this.closed) return
    this.task(taskId).catch(() => {
      // Gone or not visible by the time it was read: nothing to show.
    })
  }

  /** Opens tasks not open yet from snapshots the server sent (a listing, a move into a scope) and subscribes them from there. */
  private adopt(snapshots: TaskSnapshot[]): void {
    if (this.closed) return
    const fresh: TaskHandle[] = []
    for (const s of snapshots) {
      if (this.tasks.has(s.id) || s.deleted) continue
      const t = new TaskHandle(s.id, this.host)
      this.tasks.set(s.id, t)
      t.onSnapshot(s.rev, s)
      fresh.push(t)
    }
    for (const t of fresh) this.opened(t)
    this.subscribeTasks(fresh)
    this.refreshStatus()
  }

  private makeWatchHost(): WatchHost {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const client = this
    return {
      get epoch() {
        return client.readyEpoch
      },
      send: (msg) => this.conn?.send(msg) ?? false,
      listPage: (projectId, cursor) => {
        const q = new URLSearchParams({ limit: String(Math.min(WATCH_PAGE, Math.max(1, Math.floor(this.opts.watchPageSize ?? WATCH_PAGE)))) })
        if (projectId) q.set('projectId', projectId)
        if (cursor) q.set('cursor', cursor)
        return this.rest.request('GET', `/api/tasks?${q}`)
      },
      adopt: (snapshots) => this.adopt(snapshots),
      retryLater: (attempt, fn) => this.retryLater(attempt, fn),
      closed: (w) => {
        this.watches.delete(w)
        // The server keeps one subscription per scope and socket: keep it while another watch needs it.
        if (![...this.watches].some((o) => o.scopeKey === w.scopeKey)) this.conn?.send(w.scopeMessage('unsubscribe'))
      },
    }
  }

  // ---- persistence -------------------------------------------------------------

  /** What storage keeps under `key`: `meta`, `comments`, `task:<id>`. */
  private storedValue(key: string): unknown {
    if (key === 'meta') return { ...this.meta }
    if (key === 'comments') return this.outbox.toStored()
    return this.tasks.get(key.slice(5))?.toStored() ?? null
  }

  // ---- the host that task handles talk to ------------------------------------

  private makeHost(): TaskHost {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const client = this
    return {
      attachments: this.attachments,
      get clientId() {
        return client.requireMeta().clientId
      },
      get userId() {
        return client.auth.userId
      },
      get deviceId() {
        return client.auth.deviceId
      },
      undo: this.opts.undo,
      snapshotAt: (taskId: string, rev: number) => client.snapshotAt(taskId, rev),
      get epoch() {
        return client.readyEpoch
      },
      get closed() {
        return client.closed
      },
      nextSeq() {
        const meta = client.requireMeta()
        meta.seq += 1
        client.persister.markDirty('meta')
        if (meta.seq > (meta.seqReserved ?? 0)) {
          // Reserve the next seqs in storage, SEQ_RESERVATION at a time: a mutation under a reserved seq may go out before its write.
          const reserved = (meta.seqReserved = meta.seq + SEQ_RESERVATION)
          void client.persister.persist('meta').then(() => {
            client.seqReservedDurable = Math.max(client.seqReservedDurable, reserved)
          })
        }
        return meta.seq
      },
      seqReserved(seq: number) {
        return seq <= client.seqReservedDurable
      },
      freshSeq() {
        // Past what another writer sharing the clientId will use soon (its counter was near ours).
        const meta = client.requireMeta()
        meta.seq += 1_000_000 + Math.floor(Math.random() * 1_000_000)
        client.persister.markDirty('meta')
        client.emit('error', new TaskSyncError('already_exists', `another writer used seqs of clientId ${meta.clientId}: its mutations go again from seq ${meta.seq}`))
        return meta.seq
      },
      persist: (id) => {
        // Every local change, ack, rollback and remote op of a task is persisted: the place to notice the count moving.
        client.notePending()
        return client.persister.persist(`task:${id}`)
      },
      persistSoon: (id) => client.persister.persistSoon(`task:${id}`, PERSIST_SOON_MS),
      send: (msg) => client.conn?.send(msg) ?? false,
      resync: (t, how) => client.resync(t, how),
      diverged: (t, err) => {
        client.emit('error', err)
        client.resync(t, 'snapshot')
      },
      subscribe: (t) => client.subscribeTasks([t]),
      retryLater: (t, attempt) => client.retryLater(attempt, () => t.flush()),
      busy: (t) => client.catchingUp.has(t.id) || client.pushing.has(t.id) || client.comparing.has(t.id),
      pushing: (t) => client.pushAwaited.has(t.id),
      settled: () => {
        client.refreshStatus()
        client.wake()
      },
      conflict: (t, e) => client.emit('conflict', { ...e, taskId: t.id }),
      commentChange: (t, action, comment, prev) => {
        const m: CommentMutation = { seq: this.host.nextSeq(), taskId: t.id, action, commentId: comment.id, prev }
        if (action !== 'delete') m.body = comment.body
        if (action === 'create') m.parentId = comment.parentId
        client.outbox.add(m)
      },
    }
  }

  private requireMeta(): StoredMeta {
    if (!this.meta) throw new TaskSyncError('bad_request', 'call and await connect() first')
    return this.meta
  }
}
