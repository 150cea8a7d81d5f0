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
import { HotTasks, type HotTask } from './hot-tasks.js'
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

/** Errors after which a resend of an already committed (clientId, seq) still gets its ack. */
const RESEND_CHECKED = new Set(['invalid_op', 'task_deleted', 'not_found', 'bad_request', 'rev_too_old', 'already_exists'])

export class TaskSequencer {
  private readonly store: TaskStore
  private readonly type: TaskType
  private readonly replayWindow: number
  private readonly maxRetries: number
  private readonly queue = new KeyedQueue()
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
    if (req.clientId !== null) await this.bindClient(req.principal, req.clientId)
    const patchDigest = req.patch ? mutationDigest({ kind: 'patch', taskId: req.taskId, fields: req.patch }) : null
    const sent: Sent = { kind: 'op', op, baseRev: req.baseRev, patchDigest }
    return this.queue.run(keyOf(req), () => this.orResend(req, sent, () => this.commitOp(req, sent)))
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
    const key = `${principal.orgId}:${clientId}`
    let binding = this.bindings.get(key)
    if (!binding) {
      try {
        binding = await this.store.claimClient(clientId, principal)
      } catch (err) {
        throw asUnavailable(err, this.logger)
      }
      this.bindings.set(key, binding)
    }
    if (binding.orgId !== principal.orgId || binding.userId !== principal.userId || binding.deviceId !== principal.deviceId) {
      throw new TaskSyncError('forbidden', `clientId ${clientId} is bound to another device`)
    }
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
    if (sent.patchDigest !== null) return sent.patchDigest === record.digest
    if (this.opDigest(req.taskId, sent.op) === record.digest) return true
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
        for (const c of ops) a = this.type.transform(a, c.op, 'left')
      } catch {
        return false
      }
    }
    return this.opDigest(req.taskId, a) === this.opDigest(req.taskId, committedOp)
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
    const op = sent.op
    for (let attempt = 0; ; attempt++) {
      let step: Step
      try {
        step = attempt === 0 ? await this.optimistic(req, op) : await this.locked(req, op)
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

  private async optimistic(req: SubmitOpRequest, op: TaskOp): Promise<Step> {
    const hot = await this.hot.get(req.principal.orgId, req.taskId, req.baseRev)
    const row = await this.prepare(req, op, hot)
    if (!row) return { kind: 'identity', hot }
    const outcome = this.committer.commit(row)
    if (this.ackBeforeCommit) {
      // The deliberate bug: answered as committed whatever the commit then does.
      outcome.catch(() => {})
      return { kind: 'committed', row, hot }
    }
    return step(await outcome, row, hot)
  }

  private locked(req: SubmitOpRequest, op: TaskOp): Promise<Step> {
    return this.store.withTaskLocked(req.principal.orgId, req.taskId, async (locked) => {
      if (!locked.snapshot) throw new TaskSyncError('not_found', `task ${req.taskId} not found`)
      const hot: HotTask = { snapshot: locked.snapshot, content: contentOf(locked.snapshot), recent: [] }
      const row = await this.prepare(req, op, hot, locked)
      if (!row) return { kind: 'identity', hot }
      return step(await locked.commit(row), row, hot)
    })
  }

  /** Checks the op against the task, transforms it past what was committed since baseRev, applies it: the row to write, or null for an identity op. */
  private async prepare(req: SubmitOpRequest, op: TaskOp, hot: HotTask, locked?: LockedTask): Promise<CommitRow | null> {
    const { orgId, userId, deviceId } = req.principal
    const current = hot.snapshot.rev
    if (hot.snapshot.deleted) throw new TaskSyncError('task_deleted', `task ${req.taskId} is deleted`, { rev: current })
    if (req.baseRev > current) throw new TaskSyncError('bad_request', `baseRev ${req.baseRev} is ahead of the task's rev ${current}`)
    if (current - req.baseRev > this.replayWindow) {
      throw new TaskSyncError('rev_too_old', `rev ${req.baseRev} is more than ${this.replayWindow} revs behind: rebase on a fresh snapshot`)
    }
    let a = op
    const conflicts: ConflictRow[] = []
    for (const c of await this.hot.opsAfter(orgId, req.taskId, hot, req.baseRev, locked)) {
      for (const r of detectConflicts(a, c.op)) conflicts.push({ id: randomUUID(), ...r, committedRev: c.rev })
      a = this.type.transform(a, c.op, 'left')
    }
    if (a.projectId?.set) await this.checkProject(orgId, a.projectId.set)
    if (Object.keys(a).length === 0) return null
    const digest = req.clientId === null ? null : (req.patch ? mutationDigest({ kind: 'patch', taskId: req.taskId, fields: req.patch }) : this.opDigest(req.taskId, op))
    const before = hot.content
    const content = this.type.apply(before, a)
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
      digest,
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
      const digest = sent.patchDigest ?? this.opDigest(req.taskId, sent.op)
      const record = { clientId: req.clientId, seq: req.seq, orgId: req.principal.orgId, kind: 'op' as const, taskId: req.taskId, rev, commentId: null, digest }
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

  /** After a successful write: update the hot task, tell local listeners, publish. */
  private committed(row: CommitRow, prev: HotTask | null, conflicts: ConflictRow[]): CommitResult {
    const snapshot = toSnapshot(row.content, {
      id: row.taskId,
      rev: row.rev,
      clock: row.clock,
      createdAt: prev ? prev.snapshot.createdAt : row.at,
      updatedAt: row.at,
      updatedBy: row.userId,
    })
    this.hot.committed(row.orgId, row.taskId, snapshot, row.content, row.op, prev)
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
/** An op as normalized, with its baseRev; or the digest of the field values a REST PATCH sent. */
type SentOp = { kind: 'op'; op: TaskOp; baseRev: number; patchDigest: string | null }

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

const keyOf = (req: { principal: Principal; taskId: string }) => `${req.principal.orgId}:${req.taskId}`

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x)

/** Jittered exponential backoff: spreads instances that keep colliding on one task. */
function backoff(attempt: number): Promise<void> {
  const ms = Math.random() * Math.min(200, 2 * 2 ** attempt)
  return new Promise((resolve) => setTimeout(resolve, ms))
}
