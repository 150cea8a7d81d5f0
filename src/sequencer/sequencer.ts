/**
 * The TaskSequencer: the only code that assigns revs. Per task, one commit at a
 * time in this instance (a promise chain per org:task); an op based on an old rev
 * is transformed against the ops committed since, validated, applied and written
 * in one statement with a version check, so instances sharing the database can
 * never both commit the same rev. A lost race reloads, transforms and retries.
 */
import { randomUUID } from 'node:crypto'
import { TaskSyncError } from '../protocol/errors.js'
import type { OpEvent } from '../protocol/messages.js'
import {
  InvalidOpError,
  checkOpSize,
  contentFromInit,
  creationOp,
  detectConflicts,
  historyChanges,
  increment,
  makeTaskType,
  type TaskType,
} from '../domain/index.js'
import { contentOf, toSnapshot } from '../domain/snapshot.js'
import type { TaskContent, TaskLimits, TaskOp, TaskSnapshot } from '../domain/types.js'
import type { Principal } from '../auth/principal.js'
import type { Bus } from '../bus/types.js'
import type { CommitNotice } from '../bus/notices.js'
import { Announcer } from '../bus/announcer.js'
import type { ClientBinding, CommitOutcome, CommitRow, ConflictRow, LockedTask, MutationRecord, TaskStore } from '../storage/task-store.js'
import { asUnavailable, isLostRace } from '../storage/errors.js'
import { GroupCommitter } from './group-commit.js'
import { HotTasks, holdsOpsAfter, type HotTask } from './hot-tasks.js'
import { KeyedQueue } from './keyed-queue.js'
import { Lru } from './lru.js'
import { mutationDigest } from './digest.js'
import { checkMutationKey, type CommitListener, type CommitResult, type CreateTaskRequest, type SequencerLogger, type SubmitOpRequest } from './requests.js'

export interface SequencerOptions {
  store: TaskStore
  bus: Bus
  limits: TaskLimits
  instanceId: string
  /** Ops an op may be behind (current rev − baseRev) before it is `rev_too_old`. */
  replayWindow: number
  logger?: SequencerLogger
  /** Hot tasks kept in memory (LRU). Default 10,000. */
  cacheSize?: number
  /** Retries after a lost race before answering `unavailable`. Default 10. */
  maxRetries?: number
  /** Most op commits written in one statement (group commit). Default 64. */
  maxBatch?: number
  /** Commit statements in flight at once; more ready commits wait and are batched. Default: the store's. */
  commitConcurrency?: number
  /** Test-only (TASKSYNC_FAULT): `ack-before-commit` answers an op as committed without waiting for its commit. */
  fault?: 'ack-before-commit'
}

/**
 * Transforms done in one go before yielding to the event loop: an op ~1,000 revs behind
 * (a device back after a day) is transformed in slices, each well under a millisecond or two.
 */
const TRANSFORM_SLICE = 128

/** Lets the event loop run what is ready (I/O, timers) before going on. */
const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve))

/** Errors after which a resend of an already committed (clientId, seq) still gets its ack. */
const RESEND_CHECKED = new Set(['invalid_op', 'task_deleted', 'not_found', 'bad_request', 'rev_too_old', 'already_exists'])

export class TaskSequencer {
  private readonly store: TaskStore
  private readonly type: TaskType
  private readonly replayWindow: number
  private readonly maxRetries: number
  private readonly queue = new KeyedQueue()
  /** Per task, the ops queued behind its running commit, not yet begun (taken together when their turn comes). */
  private readonly waiting = new Map<string, QueuedOp[]>()
  private readonly maxChain: number
  private readonly hot: HotTasks
  private readonly committer: GroupCommitter
  private readonly bindings = new Lru<ClientBinding>(50_000)
  private readonly projects = new Lru<true>(10_000)
  private readonly announcer: Announcer<CommitNotice>
  private readonly logger: SequencerLogger | undefined
  private draining = false
  private lostRaces = 0
  private readonly ackBeforeCommit: boolean

  constructor(opts: SequencerOptions) {
    this.store = opts.store
    this.type = makeTaskType(opts.limits)
    this.replayWindow = opts.replayWindow
    this.maxRetries = opts.maxRetries ?? 10
    this.maxChain = opts.maxBatch ?? 64
    this.hot = new HotTasks(opts.store, opts.cacheSize ?? 10_000)
    const concurrency = opts.commitConcurrency ?? opts.store.commitConcurrency
    this.committer = new GroupCommitter((rows) => opts.store.commitOps(rows), concurrency, opts.maxBatch ?? 64)
    this.announcer = new Announcer(opts.bus, opts.instanceId, opts.logger)
    this.logger = opts.logger
    this.ackBeforeCommit = opts.fault === 'ack-before-commit'
  }

  /** Group-commit statements and rows so far (rows / statements = mean batch), and lost races retried under a row lock. */
  get commitStats(): Readonly<{ statements: number; rows: number; statementMs: number; queuedMs: number; lostRaces: number }> {
    return { ...this.committer.stats, lostRaces: this.lostRaces }
  }

  /**
   * Creates a task at rev 1; its creation is stored as creationOp(content). A resend
   * of the same (clientId, seq) answers the original ack with `duplicate: true`.
   */
  async create(req: CreateTaskRequest): Promise<CommitResult> {
    this.admit(req)
    const init = isObject(req.init) && req.projectId !== undefined ? { ...req.init, projectId: req.projectId } : req.init
    const content = contentFromInit(init, this.type.limits)
    if (content.projectId !== null) await this.checkProject(req.principal.orgId, content.projectId)
    if (req.clientId !== null) await this.bindClient(req.principal, req.clientId)
    const digest = mutationDigest({ kind: 'create', taskId: req.taskId, task: content })
    const sent: Sent = { kind: 'create', digest }
    // Ops sent after the create queue after it.
    this.waiting.delete(keyOf(req))
    return this.queue.run(keyOf(req), () => this.orResend(req, sent, () => this.commitCreate(req, content, digest)))
  }

  /**
   * Commits an op based on `baseRev` (transformed against what was committed since).
   * Errors: invalid_op, task_deleted, not_found, forbidden, bad_request (baseRev ahead),
   * rev_too_old, unavailable. An op that is identity after transform commits nothing
   * and answers the current rev.
   */
  async submit(req: SubmitOpRequest): Promise<CommitResult> {
    this.admit(req)
    if (!Number.isSafeInteger(req.baseRev) || req.baseRev < 0) throw new TaskSyncError('bad_request', 'baseRev must be a non-negative integer')
    checkOpSize(req.op, this.type.limits)
    const op = this.type.normalize(req.op)
    // A known binding is checked without an await (one per op saved).
    if (req.clientId !== null && !this.knownBinding(req.principal, req.clientId)) await this.bindClient(req.principal, req.clientId)
    // Digested once here (the op is normalized already): the commit records it, a resend compares with it.
    const digest =
      req.clientId === null ? null : req.patch ? mutationDigest({ kind: 'patch', taskId: req.taskId, fields: req.patch }) : mutationDigest({ kind: 'op', taskId: req.taskId, op })
    const sent: SentOp = { kind: 'op', op, baseRev: req.baseRev, patched: req.patch !== undefined, digest }
    return new Promise((resolve, reject) => {
      const key = keyOf(req)
      const queued: QueuedOp = { req, sent, resolve, reject }
      // Ops arriving while the task's queue is busy wait together and commit as one chain.
      const waiting = this.waiting.get(key)
      if (waiting && waiting.length < this.maxChain) return void waiting.push(queued)
      const ops = [queued]
      this.waiting.set(key, ops)
      void this.queue.run(key, () => {
        if (this.waiting.get(key) === ops) this.waiting.delete(key)
        return this.commitQueued(ops)
      })
    })
  }

  /** The task's latest snapshot read from the database, or null (also for another org's task). */
  async snapshot(orgId: string, taskId: string): Promise<TaskSnapshot | null> {
    try {
      return await this.store.loadTask(orgId, taskId)
    } catch (err) {
      throw asUnavailable(err, this.logger)
    }
  }

  /** The latest snapshots of those of `taskIds` the org has, read from the database in one go, by id. */
  async snapshots(orgId: string, taskIds: string[]): Promise<Map<string, TaskSnapshot>> {
    try {
      return new Map((await this.store.loadTasks(orgId, taskIds)).map((s) => [s.id, s]))
    } catch (err) {
      throw asUnavailable(err, this.logger)
    }
  }

  /** Committed ops with rev ≥ fromRev, ascending, at most `limit`. */
  async opsSince(orgId: string, taskId: string, fromRev: number, limit: number): Promise<OpEvent[]> {
    try {
      return (await this.store.loadOps(orgId, taskId, fromRev, limit)).map((o) => ({ type: 'op', taskId, ...o }))
    } catch (err) {
      throw asUnavailable(err, this.logger)
    }
  }

  /**
   * Binds clientId to the principal's device on first use within its organization; forbidden
   * when another device of the organization holds it. Another organization's use of the same
   * UUID is another client and neither conflicts nor shows (PROTOCOL.md section 3).
   */
  async bindClient(principal: Principal, clientId: string): Promise<void> {
    if (this.knownBinding(principal, clientId)) return
    let binding: ClientBinding
    try {
      binding = await this.store.claimClient(clientId, principal)
    } catch (err) {
      throw asUnavailable(err, this.logger)
    }
    this.bindings.set(`${principal.orgId}:${clientId}`, binding)
    checkBinding(binding, principal, clientId)
  }

  /** True when this instance knows the binding and it is the principal's device; forbidden when it is another's; false when unknown. */
  private knownBinding(principal: Principal, clientId: string): boolean {
    const binding = this.bindings.get(`${principal.orgId}:${clientId}`)
    if (!binding) return false
    checkBinding(binding, principal, clientId)
    return true
  }

  /** Listens to this instance's commits, synchronously, in rev order per task; returns an unsubscribe. */
  onCommit(listener: CommitListener): () => void {
    return this.announcer.listen(listener)
  }

  /** Stops accepting mutations (they answer `unavailable`) and waits for begun commits and their publications. */
  async drain(): Promise<void> {
    this.draining = true
    await this.queue.idle()
    await this.announcer.idle()
  }

  private admit(req: CreateTaskRequest | SubmitOpRequest): void {
    checkMutationKey(req)
    if (this.draining) throw new TaskSyncError('unavailable', 'the server is shutting down; retry on another instance')
    if (req.principal.role === 'viewer') throw new TaskSyncError('forbidden', 'a viewer may read tasks but not change them')
  }

  private async checkProject(orgId: string, projectId: string): Promise<void> {
    const key = `${orgId}:${projectId}`
    if (this.projects.get(key)) return
    let exists: boolean
    try {
      exists = await this.store.projectExists(orgId, projectId)
    } catch (err) {
      throw asUnavailable(err, this.logger)
    }
    if (!exists) throw new InvalidOpError('projectId', `no project ${projectId} in this organization`)
    this.projects.set(key, true)
  }

  /** Runs a commit; when it fails in a way a resend would, answers the original ack if (clientId, seq) is recorded. */
  private async orResend(req: CreateTaskRequest | SubmitOpRequest, sent: Sent, fn: () => Promise<CommitResult>): Promise<CommitResult> {
    try {
      return await fn()
    } catch (err) {
      if (req.clientId === null || req.seq === null || !(err instanceof TaskSyncError) || !RESEND_CHECKED.has(err.code)) throw err
      const record = await this.store.findMutation(req.principal.orgId, req.clientId, req.seq).catch(() => null)
      if (!record) throw err
      return this.duplicate(req, record, sent)
    }
  }

  /**
   * The answer to a (clientId, seq) already recorded: the original ack when this is a
   * resend of that mutation, `already_exists` when it is another one (another writer
   * shares the clientId, PROTOCOL.md section 3), which commits nothing.
   */
  private async duplicate(req: CreateTaskRequest | SubmitOpRequest, record: MutationRecord, sent: Sent): Promise<CommitResult> {
    const reused = () => new TaskSyncError('already_exists', `seq ${req.seq} of client ${req.clientId} was already used by another mutation`)
    if (record.orgId !== req.principal.orgId || record.taskId !== req.taskId || record.kind !== sent.kind) throw reused()
    const snapshot = await this.snapshot(req.principal.orgId, req.taskId)
    if (!snapshot) throw new TaskSyncError('not_found', `task ${req.taskId} not found`)
    const rev = record.rev ?? snapshot.rev
    // The op at that rev tells a commit (ours) from a no-op (someone else's); a rev the trimmed
    // log no longer holds counts as our commit.
    const [o] = sent.kind === 'op' ? await this.opsSince(req.principal.orgId, req.taskId, rev, 1) : []
    const logged = o && o.rev === rev ? o : null
    const noop = logged !== null && !(logged.clientId === req.clientId && logged.seq === req.seq)
    const committedOp = noop ? {} : (logged?.op ?? null)
    if (!(await this.sameMutation(req, record, sent, noop, committedOp))) throw reused()
    return { taskId: req.taskId, rev, duplicate: true, noop, snapshot, event: null, conflicts: [] }
  }

  /**
   * Whether a mutation is the one recorded: the same digest (the mutation as first
   * sent, whatever its baseRev). An op that differs may still be that op rebased by
   * the client on ops it received since (as OT clients do with an unacknowledged
   * op): transformed past the ops between its baseRev and the rev it committed at
   * (or was a no-op at), it must then be the op committed there (`{}` for a no-op).
   * Records without a digest (older), and ops whose committed form the trimmed log
   * no longer holds, are taken as resends, as before digests.
   */
  private async sameMutation(
    req: CreateTaskRequest | SubmitOpRequest,
    record: MutationRecord,
    sent: Sent,
    noop: boolean,
    committedOp: TaskOp | null,
  ): Promise<boolean> {
    if (record.digest === null) return true
    if (sent.kind === 'create') return sent.digest === record.digest
    if (sent.patched) return sent.digest === record.digest
    if (sent.digest === record.digest) return true
    if (committedOp === null) return true
    const at = record.rev ?? 0
    const upTo = noop ? at : at - 1
    let a = sent.op
    if (sent.baseRev < upTo) {
      const count = upTo - sent.baseRev
      if (count > this.replayWindow) return true
      const ops = await this.opsSince(req.principal.orgId, req.taskId, sent.baseRev + 1, count)
      if (ops.length !== count || ops[0].rev !== sent.baseRev + 1) return true
      try {
        for (let i = 0; i < ops.length; i++) {
          if (i > 0 && i % TRANSFORM_SLICE === 0) await yieldToLoop()
          a = this.type.transform(a, ops[i].op, 'left')
        }
      } catch {
        return false
      }
    }
    return this.opDigest(req.taskId, a) === this.opDigest(req.taskId, committedOp)
  }

  /**
   * Commits a task's queued ops, in order. Two or more are prepared one after the other
   * on the task as the ones before them leave it, and leave as one chain of consecutive
   * revs in one statement; a chain that is not written whole (the task moved on, a
   * resend among them, an error a retry may cure) commits each of its ops again on its
   * own, as if it had come alone. An op that cannot join a chain (refused, identity,
   * behind the ops held in memory) commits on its own after the chain before it.
   */
  private async commitQueued(ops: QueuedOp[]): Promise<void> {
    for (let i = 0; i < ops.length; ) {
      const chain = ops.length - i > 1 ? await this.prepareChain(ops, i) : null
      if (chain) {
        await this.commitChain(chain)
        i += chain.length
      } else {
        await this.alone(ops[i])
        i++
      }
    }
  }

  /** One queued op committed on its own, as every op is when it comes alone. */
  private alone({ req, sent, resolve, reject }: QueuedOp): Promise<void> {
    return this.orResend(req, sent, () => this.commitOp(req, sent)).then(resolve, reject)
  }

  /** The rows of ops[from…] that chain on the task (each on the one before): null when fewer than two do. */
  private async prepareChain(ops: QueuedOp[], from: number): Promise<Link[] | null> {
    const { req } = ops[from]
    let hot: HotTask
    try {
      hot = await this.hot.get(req.principal.orgId, req.taskId, req.baseRev)
    } catch {
      return null
    }
    // Every op of the chain is transformed from memory: the committed ops after the oldest base in it, read once.
    // Ops past the replay window are refused without a read (each then on its own, as rev_too_old).
    const floor = hot.snapshot.rev - this.replayWindow
    if (req.baseRev < floor) return null
    let oldest = req.baseRev
    for (let i = from + 1; i < ops.length; i++) if (ops[i].req.baseRev >= floor) oldest = Math.min(oldest, ops[i].req.baseRev)
    hot = await this.hot.widened(req.principal.orgId, req.taskId, hot, oldest)
    const links: Link[] = []
    for (let i = from; i < ops.length; i++) {
      const { req, sent } = ops[i]
      // Past the first, the task is not committed yet: the ops it is transformed against must all be in memory.
      if (links.length > 0 && !holdsOpsAfter(hot, req.baseRev)) break
      let row: CommitRow | null
      try {
        row = await this.prepare(req, sent, hot)
      } catch {
        break
      }
      if (!row) break
      const next = HotTasks.after(hot, this.snapshotOf(row, hot), row.content, row.op)
      links.push({ queued: ops[i], row, prev: hot, next })
      hot = next
    }
    return links.length > 1 ? links : null
  }

  private async commitChain(links: Link[]): Promise<void> {
    const { orgId, taskId } = links[0].row
    const pending = this.committer.commit(links.map((l) => l.row))
    let outcomes: CommitOutcome[] | null = null
    if (this.ackBeforeCommit) {
      // The deliberate bug: answered as committed whatever the commit then does.
      pending.catch(() => {})
    } else {
      try {
        outcomes = await pending
      } catch (err) {
        this.hot.forget(orgId, taskId)
        if (!isLostRace(err)) {
          const refused = asUnavailable(err, this.logger)
          for (const l of links) l.queued.reject(refused)
          return
        }
      }
    }
    if (this.ackBeforeCommit || outcomes?.every((o) => o.kind === 'committed')) {
      for (const l of links) l.queued.resolve(this.committed(l.row, l.prev, l.row.conflicts, l.next))
      return
    }
    // Nothing of the chain was written: each op on its own, in order, from the database's task.
    this.hot.forget(orgId, taskId)
    for (const l of links) await this.alone(l.queued)
  }

  /** The digest of an op, normalized. */
  private opDigest(taskId: string, op: TaskOp): string {
    return mutationDigest({ kind: 'op', taskId, op: this.type.normalize(op) })
  }

  private async commitCreate(req: CreateTaskRequest, content: TaskContent, digest: string): Promise<CommitResult> {
    const { orgId, userId, deviceId } = req.principal
    const at = new Date().toISOString()
    const row: CommitRow = {
      orgId,
      taskId: req.taskId,
      prevRev: 0,
      rev: 1,
      content,
      clock: { [deviceId]: 1 },
      at,
      userId,
      deviceId,
      clientId: req.clientId,
      seq: req.seq,
      digest: req.clientId === null ? null : digest,
      op: creationOp(content),
      changes: historyChanges(this.type.create(), content),
      conflicts: [],
      tombstone: false,
    }
    for (let attempt = 0; ; attempt++) {
      let outcome: CommitOutcome
      try {
        outcome = await this.store.commitCreate(row)
      } catch (err) {
        // A racing resend of the same (clientId, seq): the next attempt finds its record.
        if (isLostRace(err) && attempt < this.maxRetries) continue
        throw asUnavailable(err, this.logger)
      }
      if (outcome.kind === 'duplicate') return this.duplicate(req, outcome.record, { kind: 'create', digest })
      if (outcome.kind === 'lost') throw new TaskSyncError('already_exists', `task ${req.taskId} already exists`)
      return this.committed(row, null, [])
    }
  }

  /**
   * The first attempt is optimistic: the hot task, group commit, a version check. After
   * a lost race the task row is locked in a transaction, read, transformed and written,
   * so an instance that keeps losing to a busier one still makes progress.
   */
  private async commitOp(req: SubmitOpRequest, sent: SentOp): Promise<CommitResult> {
    const { orgId } = req.principal
    for (let attempt = 0; ; attempt++) {
      let step: Step
      try {
        step = attempt === 0 ? await this.optimistic(req, sent) : await this.locked(req, sent)
      } catch (err) {
        if (err instanceof TaskSyncError) throw err
        // The outcome is unknown (or a racing duplicate): forget the cached task either way.
        this.hot.forget(orgId, req.taskId)
        if (isLostRace(err) && attempt < this.maxRetries) {
          await backoff(attempt)
          continue
        }
        throw asUnavailable(err, this.logger)
      }
      if (step.kind === 'identity') return this.identity(req, sent, step.hot)
      if (step.kind === 'committed') return this.committed(step.row, step.hot, step.row.conflicts)
      if (step.kind === 'duplicate') return this.duplicate(req, step.record, sent)
      this.hot.forget(orgId, req.taskId)
      this.lostRaces++
      if (attempt >= this.maxRetries) throw new TaskSyncError('unavailable', `task ${req.taskId} is too contended; retry`)
      await backoff(attempt)
    }
  }

  private async optimistic(req: SubmitOpRequest, sent: SentOp): Promise<Step> {
    const hot = this.hot.cached(req.principal.orgId, req.taskId, req.baseRev) ?? (await this.hot.get(req.principal.orgId, req.taskId, req.baseRev))
    const row = await this.prepare(req, sent, hot)
    if (!row) return { kind: 'identity', hot }
    const outcome = this.committer.commit([row])
    if (this.ackBeforeCommit) {
      // The deliberate bug: answered as committed whatever the commit then does.
      outcome.catch(() => {})
      return { kind: 'committed', row, hot }
    }
    return step((await outcome)[0], row, hot)
  }

  private locked(req: SubmitOpRequest, sent: SentOp): Promise<Step> {
    return this.store.withTaskLocked(req.principal.orgId, req.taskId, async (locked) => {
      if (!locked.snapshot) throw new TaskSyncError('not_found', `task ${req.taskId} not found`)
      const hot: HotTask = { snapshot: locked.snapshot, content: contentOf(locked.snapshot), recent: [] }
      const row = await this.prepare(req, sent, hot, locked)
      if (!row) return { kind: 'identity', hot }
      return step(await locked.commit(row), row, hot)
    })
  }

  /** Checks the op against the task, transforms it past what was committed since baseRev, applies it: the row to write, or null for an identity op. */
  private async prepare(req: SubmitOpRequest, sent: SentOp, hot: HotTask, locked?: LockedTask): Promise<CommitRow | null> {
    const { orgId, userId, deviceId } = req.principal
    const current = hot.snapshot.rev
    if (hot.snapshot.deleted) throw new TaskSyncError('task_deleted', `task ${req.taskId} is deleted`, { rev: current })
    if (req.baseRev > current) throw new TaskSyncError('bad_request', `baseRev ${req.baseRev} is ahead of the task's rev ${current}`)
    if (current - req.baseRev > this.replayWindow) {
      throw new TaskSyncError('rev_too_old', `rev ${req.baseRev} is more than ${this.replayWindow} revs behind: rebase on a fresh snapshot`)
    }
    let a = sent.op
    const conflicts: ConflictRow[] = []
    const since = await this.hot.opsAfter(orgId, req.taskId, hot, req.baseRev, locked)
    for (let i = 0; i < since.length; i++) {
      // An op far behind yields to the event loop between slices: live commits and fan-out are not held up behind it.
      if (i > 0 && i % TRANSFORM_SLICE === 0) await yieldToLoop()
      const c = since[i]
      for (const r of detectConflicts(a, c.op)) conflicts.push({ id: randomUUID(), ...r, committedRev: c.rev })
      a = this.type.transform(a, c.op, 'left')
    }
    if (a.projectId?.set) await this.checkProject(orgId, a.projectId.set)
    if (Object.keys(a).length === 0) return null
    const before = hot.content
    // An op no commit was transformed against is still the one normalize read: not read again.
    const content = a === sent.op ? this.type.applyNormalized(before, a) : this.type.apply(before, a)
    return {
      orgId,
      taskId: req.taskId,
      prevRev: current,
      rev: current + 1,
      content,
      clock: increment(hot.snapshot.clock, deviceId),
      at: new Date().toISOString(),
      userId,
      deviceId,
      clientId: req.clientId,
      seq: req.seq,
      digest: sent.digest,
      op: a,
      changes: historyChanges(before, content),
      conflicts,
      tombstone: a.delete === true,
    }
  }

  /** An op that is `{}` after transform: nothing is committed; a (clientId, seq) is still recorded. */
  private async identity(req: SubmitOpRequest, sent: SentOp, hot: HotTask): Promise<CommitResult> {
    const rev = hot.snapshot.rev
    if (req.clientId !== null && req.seq !== null) {
      const record = { clientId: req.clientId, seq: req.seq, orgId: req.principal.orgId, kind: 'op' as const, taskId: req.taskId, rev, commentId: null, digest: sent.digest }
      let fresh: boolean
      try {
        fresh = await this.store.recordMutation(record)
      } catch (err) {
        throw asUnavailable(err, this.logger)
      }
      if (!fresh) {
        const existing = await this.store.findMutation(req.principal.orgId, req.clientId, req.seq).catch(() => null)
        if (existing) return this.duplicate(req, existing, sent)
      }
    }
    return { taskId: req.taskId, rev, duplicate: false, noop: true, snapshot: hot.snapshot, event: null, conflicts: [] }
  }

  /** The task's snapshot after `row`. */
  private snapshotOf(row: CommitRow, prev: HotTask | null): TaskSnapshot {
    return toSnapshot(row.content, {
      id: row.taskId,
      rev: row.rev,
      clock: row.clock,
      createdAt: prev ? prev.snapshot.createdAt : row.at,
      updatedAt: row.at,
      updatedBy: row.userId,
    })
  }

  /** After a successful write: update the hot task (to `next` when a chain prepared it), tell local listeners, publish. */
  private committed(row: CommitRow, prev: HotTask | null, conflicts: ConflictRow[], next?: HotTask): CommitResult {
    let snapshot: TaskSnapshot
    if (next) {
      snapshot = next.snapshot
      this.hot.put(row.orgId, row.taskId, next)
    } else {
      snapshot = this.snapshotOf(row, prev)
      this.hot.committed(row.orgId, row.taskId, snapshot, row.content, row.op, prev)
    }
    const event: OpEvent = {
      type: 'op',
      taskId: row.taskId,
      rev: row.rev,
      op: row.op,
      userId: row.userId,
      deviceId: row.deviceId,
      clientId: row.clientId,
      seq: row.seq,
      at: row.at,
    }
    const notice: CommitNotice = {
      kind: 'op',
      from: this.announcer.instanceId,
      orgId: row.orgId,
      taskId: row.taskId,
      rev: row.rev,
      projectId: row.content.projectId,
      event,
      // Serialized once: the local sockets' frame and the bus payload.
      eventJson: JSON.stringify(event),
    }
    const prevProject = prev ? prev.snapshot.projectId : null
    if (prev && prevProject !== row.content.projectId) {
      notice.prevProjectId = prevProject
      notice.snapshot = snapshot
    }
    this.announcer.announce(notice)
    return {
      taskId: row.taskId,
      rev: row.rev,
      duplicate: false,
      noop: false,
      snapshot,
      event,
      conflicts: conflicts.map(({ field, committed, incoming }) => ({ field, committed, incoming })),
    }
  }
}

/** What a mutation sent, for telling its resend from another mutation under its (clientId, seq). */
type Sent = { kind: 'create'; digest: string } | SentOp
/**
 * An op as normalized, with its baseRev and its digest (null without a (clientId, seq)): of the
 * op, or of the field values a REST PATCH sent (`patched`).
 */
type SentOp = { kind: 'op'; op: TaskOp; baseRev: number; patched: boolean; digest: string | null }

/** An op waiting in its task's queue, answered when its commit settles. */
interface QueuedOp {
  req: SubmitOpRequest
  sent: SentOp
  resolve(result: CommitResult): void
  reject(err: unknown): void
}

/** One op of a chain: its row, the task before it and after it. */
interface Link {
  queued: QueuedOp
  row: CommitRow
  prev: HotTask
  next: HotTask
}

/** Where one commit attempt ended. */
type Step =
  | { kind: 'identity'; hot: HotTask }
  | { kind: 'committed'; row: CommitRow; hot: HotTask }
  | { kind: 'duplicate'; record: MutationRecord }
  | { kind: 'lost' }

function step(outcome: CommitOutcome, row: CommitRow, hot: HotTask): Step {
  if (outcome.kind === 'committed') return { kind: 'committed', row, hot }
  if (outcome.kind === 'duplicate') return { kind: 'duplicate', record: outcome.record }
  return { kind: 'lost' }
}

function checkBinding(binding: ClientBinding, principal: Principal, clientId: string): void {
  if (binding.orgId !== principal.orgId || binding.userId !== principal.userId || binding.deviceId !== principal.deviceId) {
    throw new TaskSyncError('forbidden', `clientId ${clientId} is bound to another device`)
  }
}

const keyOf = (req: { principal: Principal; taskId: string }) => `${req.principal.orgId}:${req.taskId}`

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x)

/** Jittered exponential backoff: spreads instances that keep colliding on one task. */
function backoff(attempt: number): Promise<void> {
  const ms = Math.random() * Math.min(200, 2 * 2 ** attempt)
  return new Promise((resolve) => setTimeout(resolve, ms))
}
