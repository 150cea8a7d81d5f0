/**
 * A live task: the client half of operational transformation for one task.
 *
 * State (as in ShareDB's client Doc, with one change: local ops made while one
 * is in flight are composed into a single pending op):
 *   base      the last snapshot the server confirmed, at `rev`
 *   inflight  the one mutation sent and not yet acknowledged (it owns a seq)
 *   pending   later local ops, composed, not yet sent
 *   view      base + inflight + pending: what the app sees
 *
 * A server op at rev+1 is transformed past inflight then pending exactly as the
 * server transforms a late op (`transform(ours, theirs, 'left')`), and theirs
 * past ours with 'right', so every client reaches the server's snapshot.
 */
import { opFromPatch, taskType, contentFromInit, textEdit } from '../domain/index.js'
import type { TaskContent, TaskOp, TaskPatch, TaskSnapshot } from '../domain/types.js'
import type { ErrorCode } from '../protocol/errors.js'
import { TaskSyncError } from '../protocol/errors.js'
import type { ClientMessage, Comment, OpEvent, TaskInit } from '../protocol/messages.js'
import { commitOnto, contentOf, prepareApply, rebaseOnto, unborn, withCommit, withoutRejected } from './content.js'
import { Emitter } from './emitter.js'
import type { AttachOptions, AttachSource, AttachmentUploads, TaskAttachments, UploadHandle } from './attachments.js'
import { TaskComments } from './task-comments.js'
import { TaskPresence } from './presence.js'
import { UndoHistory, type UndoOptions } from './undo.js'
import type { AckEvent, ConflictEvent, StoredTask, TaskEvents, TaskMutation } from './types.js'

/** What a task needs from its client (the connection, the seq counter, storage). */
export interface TaskHost {
  /** The client's uploads and attachment lists (attachments.ts). */
  readonly attachments: AttachmentUploads
  readonly clientId: string
  readonly userId: string | undefined
  readonly deviceId: string | undefined
  /** Undo options of the client (pause that ends a step, steps kept). */
  readonly undo?: UndoOptions
  /** Number of the current ready connection (after `welcome`); 0 when there is none. */
  readonly epoch: number
  /** True once the client is closed: no more local changes are accepted. */
  readonly closed: boolean
  nextSeq(): number
  /** True when `seq` is under the seq reservation already in storage (a restart cannot hand it out again). */
  seqReserved(seq: number): boolean
  /** A seq far past the counter: the counter's next ones were used by another writer sharing the clientId. */
  freshSeq(): number
  /** The task's snapshot at a past rev, from the server. */
  snapshotAt(taskId: string, rev: number): Promise<TaskSnapshot>
  /** Resolves once the task's current state (and the seq counter) is durable. */
  persist(taskId: string): Promise<void>
  /**
   * The task's confirmed copy moved on (another client's op), nothing local changed:
   * written with the next write, or within a short while. What storage holds meanwhile
   * is the task as it was, with its unacknowledged ops as they were: consistent, and
   * caught up from the server after a restart like any other absence.
   */
  persistSoon(taskId: string): void
  send(msg: ClientMessage): boolean
  /** Catch up from the op log (`log`) or reload from a snapshot (`snapshot`). */
  resync(task: TaskHandle, how: 'log' | 'snapshot'): void
  /** A committed op did not apply to the local copy (it diverged): reported, and the task reloaded from a snapshot. */
  diverged(task: TaskHandle, err: Error): void
  subscribe(task: TaskHandle): void
  /** Schedules a resend after a transient failure; false once `attempt` is past the limit (give up). */
  retryLater(task: TaskHandle, attempt: number): boolean
  /** True while the task is being caught up over REST: nothing is sent meanwhile. */
  busy(task: TaskHandle): boolean
  /** True while the task's in-flight mutation is in a REST push under way (its outcome decides how a snapshot is taken). */
  pushing?(task: TaskHandle): boolean
  settled(): void
  conflict(task: TaskHandle, e: ConflictEvent): void
  commentChange(task: TaskHandle, action: 'create' | 'edit' | 'delete', comment: Comment, prev: Comment | null): void
}

/** A committed op as the socket or the op log delivers it. */
export type CommittedOp = Pick<OpEvent, 'rev' | 'op' | 'clientId' | 'seq' | 'userId' | 'deviceId' | 'at'>

/** Fresh seqs tried for one mutation whose seq another writer had used, before it is rolled back. */
export const MAX_REISSUES = 5
/** The text fields of a task. */
export type TextField = 'title' | 'description'

/** Ops that arrived ahead of a gap are kept up to this many. */
const MAX_FUTURE = 10_000
/** Remembered own commits, to notice when an ack was misread. */
const OWN_REVS_KEPT = 64

/** The content a create gives: the server merges the message's projectId into the initial fields. */
const createInit = (init: TaskInit, projectId: string | null): TaskInit => (projectId !== null ? { ...init, projectId } : init)

const isEmpty = (op: TaskOp): boolean => Object.keys(taskType.normalize(op)).length === 0

export class TaskHandle extends Emitter<TaskEvents> {
  /** The task id. */
  readonly id: string
  private base: TaskSnapshot | null = null
  private view: TaskContent | null = null
  private inflight: TaskMutation | null = null
  private pendingOp: TaskOp | null = null
  private pendingCount = 0
  /** The in-flight op's fate is unknown: the base was replaced by a snapshot since it was sent. */
  private uncertain = false
  /** An ack whose rev is ahead of ours: applied once the ops before it arrive. */
  private heldAck: { rev: number; noop: boolean } | null = null
  private durableSeq = 0
  /** A write has taken the pending op (some of it may be in storage without a seq): its promotion is written before it is sent. */
  private pendingWritten = false
  /** The seq of the in-flight op while it has never left this client (promoted in this life, not yet sent nor pushed). */
  private unsentSeq = 0
  /** The in-flight op as a REST push answered it: committed at `rev` (certain: the push names a commit that holds nothing as `noop`). */
  private pushedCommit: { seq: number; rev: number } | null = null
  /** A snapshot that came while the in-flight op was in a push under way: taken or dropped once the push answers. */
  private parked: TaskSnapshot | null = null
  private sentEpoch = 0
  private subscribedEpoch = 0
  private retries = 0
  private readonly ownRevs = new Map<number, number>()
  private readonly future = new Map<number, CommittedOp>()
  private cached: TaskSnapshot | null = null
  /** Custom field objects of the base or the view that only this task holds (changed in place; see prepareApply). */
  private readonly owned = new WeakSet<object>()
  private deletedSent = false
  /** Set when a committed op did not apply here: later ops wait for the snapshot that replaces the base. */
  private divergent = false
  private readonly presenceBox: TaskPresence
  private readonly commentBox: TaskComments
  private readyWaiters: { resolve: () => void; reject: (e: Error) => void }[] = []
  private readonly history: UndoHistory
  /** Set when the server said the task does not exist (or is not visible). */
  missing: TaskSyncError | null = null
  /** False once `close()` was called. */
  open = true

  constructor(id: string, private readonly host: TaskHost) {
    super()
    this.id = id
    this.presenceBox = new TaskPresence(
      (state) => this.isSubscribed() && this.host.send({ type: 'presence', taskId: this.id, state }),
      (e) => this.emit('presence', e),
    )
    this.commentBox = new TaskComments(id, (e) => this.emit('comment', e))
    this.history = new UndoHistory(host.undo)
  }

  // ---- public API -------------------------------------------------------

  /** True once a snapshot is known (from storage, a create, or the server). */
  get loaded(): boolean {
    return this.base !== null
  }

  /** The task as this client sees it: the confirmed snapshot plus unacknowledged local changes. */
  get snapshot(): TaskSnapshot {
    if (!this.base || !this.view) throw new TaskSyncError('not_found', `task ${this.id} is not loaded yet`)
    if (!this.cached) {
      // Handed out: never changed in place from now on.
      this.owned.delete(this.view.customFields)
      this.cached = { ...this.base, ...this.view }
    }
    return this.cached
  }

  /** The last rev confirmed by the server (0 while a local create is unacknowledged). */
  get rev(): number {
    return this.base?.rev ?? 0
  }

  /** Number of local changes not yet acknowledged by the server. */
  get pending(): number {
    return (this.inflight?.count ?? 0) + this.pendingCount
  }

  /** True once the task is deleted (locally or by anyone). */
  get deleted(): boolean {
    return this.view?.deleted ?? false
  }

  /** Other clients' presence states on this task, by clientId. */
  get presence(): ReadonlyMap<string, { userId: string; state: Record<string, unknown> }> {
    return this.presenceBox.others
  }

  /** Known comments of the task, oldest first (deleted ones left out). */
  /**
   * Attaches a file (a File/Blob, a Uint8Array/Buffer, or `fileSource(path)` in Node):
   * queued in the client's storage, uploaded when online (resuming from what the
   * server has), at most 5 chunks at once. The handle has progress, pause, resume,
   * cancel and `done`.
   */
  attach(file: Blob | Uint8Array | AttachSource, opts?: AttachOptions): Promise<UploadHandle> {
    return this.host.attachments.attach(this.id, file, opts)
  }

  /** The live list of this task's attachments (`.list`, `change` events). */
  get attachments(): TaskAttachments {
    return this.host.attachments.of(this.id)
  }

  get comments(): Comment[] {
    return this.commentBox.list()
  }

  /**
   * Applies `op` locally at once and queues it for the server. Throws
   * InvalidOpError (nothing changes) when it cannot apply to the current snapshot.
   */
  submit(op: TaskOp): void {
    const view = this.requireView()
    if (view.deleted) throw new TaskSyncError('task_deleted', `task ${this.id} is deleted`)
    const norm = taskType.normalize(op)
    const next = taskType.apply(view, norm)
    if (Object.keys(norm).length === 0) return
    this.view = next
    this.pendingOp = this.pendingOp ? taskType.compose(this.pendingOp, norm) : norm
    this.pendingCount++
    this.changed({ local: true, op: norm })
    this.flush()
    void this.host.persist(this.id)
  }

  /** Sets fields to plain values (text fields become minimal edits); see TaskPatch. */
  update(patch: TaskPatch): void {
    this.submit(opFromPatch(this.requireView(), patch))
  }

  /** Inserts `text` into a text field at code point `pos`. */
  insertText(field: TextField, pos: number, text: string): void {
    this.submit({ [field]: textEdit(pos, 0, text) })
  }

  /** Deletes `length` code points of a text field from code point `pos`. */
  deleteText(field: TextField, pos: number, length: number): void {
    this.submit({ [field]: textEdit(pos, length) })
  }

  /** Replaces `length` code points of a text field at `pos` with `text`. */
  replaceText(field: TextField, pos: number, length: number, text: string): void {
    this.submit({ [field]: textEdit(pos, length, text) })
  }

  /** Sets a text field to `value` as the smallest edit (common prefix and suffix kept): what a textarea's input event needs. */
  setText(field: TextField, value: string): void {
    this.update({ [field]: value })
  }

  /**
   * Undoes this client's last step on the task (edits made within the undo
   * pause of each other), moved past everything applied since: other
   * people's edits stay. False when there is nothing to undo.
   */
  undo(): boolean {
    return this.history.step('undo', (op) => this.submit(op))
  }

  /** Redoes the step the last undo took back. False when there is nothing to redo. */
  redo(): boolean {
    return this.history.step('redo', (op) => this.submit(op))
  }

  /** True when `undo()` has a step of this client's to take back. */
  get canUndo(): boolean {
    return this.history.canUndo
  }

  /** True when `redo()` has a step to apply again. */
  get canRedo(): boolean {
    return this.history.canRedo
  }

  /** The task as it was at `rev`, asked of the server (needs a connection); rejects with `rev_too_old` when its history no longer reaches back. */
  at(rev: number): Promise<TaskSnapshot> {
    return this.host.snapshotAt(this.id, rev)
  }

  /** Deletes the task (deletion wins over concurrent edits). */
  delete(): void {
    this.submit({ delete: true })
  }

  /** Shares this client's presence (cursor, field, typing) with the task's other subscribers; null clears it. */
  setPresence(state: Record<string, unknown> | null): void {
    this.presenceBox.set(state)
  }

  /** Adds a comment (optimistically: it shows at once and is sent when possible). */
  addComment(body: string, opts: { id?: string; parentId?: string | null } = {}): Comment {
    const comment = this.commentBox.create(body, opts, this.host.userId ?? '')
    this.host.commentChange(this, 'create', comment, null)
    return comment
  }

  /** Replaces a comment's body. */
  editComment(commentId: string, body: string): void {
    const { prev, next } = this.commentBox.change(commentId, 'edit', body)
    this.host.commentChange(this, 'edit', next, prev)
  }

  /** Deletes a comment. */
  deleteComment(commentId: string): void {
    const { prev, next } = this.commentBox.change(commentId, 'delete')
    this.host.commentChange(this, 'delete', next, prev)
  }

  /** Resolves once the task is loaded; rejects if the server says it does not exist. */
  ready(): Promise<this> {
    if (this.base) return Promise.resolve(this)
    if (this.missing) return Promise.reject(this.missing)
    return new Promise((resolve, reject) => this.readyWaiters.push({ resolve: () => resolve(this), reject }))
  }

  // ---- state for the client ---------------------------------------------

  /** True when nothing local is waiting for the server. */
  get quiet(): boolean {
    return !this.inflight && !this.pendingOp && !this.heldAck
  }

  /** @internal True when the task's `subscribed` arrived on the current connection. */
  isSubscribed(): boolean {
    return this.host.epoch !== 0 && this.subscribedEpoch === this.host.epoch
  }

  /** The seq of the mutation sent on the current connection and not yet answered. */
  inflightSeq(): number | undefined {
    return this.inflight && this.sentEpoch !== 0 && this.sentEpoch === this.host.epoch ? this.inflight.seq : undefined
  }

  /** The recorded in-flight mutation, for a REST push (with the rev its op is expressed against). */
  pushable(): { task: TaskHandle; mutation: TaskMutation; baseRev: number }[] {
    const f = this.inflight
    // Not one already on its way over the current socket: the server must not get one seq twice at once.
    if (!f || this.durableSeq !== f.seq || this.heldAck || this.inflightSeq() !== undefined) return []
    return [{ task: this, mutation: f, baseRev: f.kind === 'op' && !this.uncertain ? this.rev : (f as { baseRev?: number }).baseRev ?? 0 }]
  }

  /**
   * @internal Folds the local changes made after the in-flight op into it while that op has
   * never left this client (promoted in this life, neither sent nor pushed: no server knows
   * its seq), so an offline queue goes as one mutation, not one after the other's ack. The
   * folded mutation is written before it may be sent (resolves then); null when nothing folds.
   */
  foldUnsent(): Promise<void> | null {
    const f = this.inflight
    if (!f || f.kind !== 'op' || this.unsentSeq !== f.seq || !this.pendingOp || this.uncertain || this.heldAck) return null
    let op: TaskOp
    try {
      op = taskType.compose(f.op, this.pendingOp)
    } catch {
      return null
    }
    f.op = op
    f.count += this.pendingCount
    this.pendingOp = null
    this.pendingCount = 0
    this.pendingWritten = false
    // What storage holds under this seq is the op before the fold: not sendable until the fold is written.
    this.durableSeq = 0
    const seq = f.seq
    return this.host.persist(this.id).then(() => {
      if (this.inflight?.seq === seq) this.durableSeq = seq
    })
  }

  /** @internal The in-flight mutation goes out in a REST push: its seq is no longer this client's alone. */
  markPushed(seq: number): void {
    if (this.unsentSeq === seq) this.unsentSeq = 0
  }

  /**
   * @internal A REST push answered the in-flight op `applied` or `duplicate` at `rev`, without
   * `noop`: it is committed there. With nothing else local, a snapshot at that rev or later
   * holds it, so the task may take a snapshot (the one parked during the push, or the next)
   * rather than read every op it missed from the log.
   */
  onPushCommitted(seq: number, rev: number): void {
    const f = this.inflight
    if (!f || f.kind !== 'op' || f.seq !== seq || this.uncertain) return
    this.pushedCommit = { seq, rev }
  }

  /**
   * @internal The push that carried the in-flight op has answered (or failed). A snapshot parked
   * meanwhile is taken when the op is known committed, else the task catches up from the log,
   * as for any snapshot that comes with local changes. True when the parked snapshot was taken.
   */
  pushEnded(): boolean {
    const parked = this.parked
    this.parked = null
    if (!parked) return false
    if (this.takeAfterPush(parked)) return true
    if (this.base && parked.rev > this.base.rev) {
      if (this.quiet) this.replaceBase(parked)
      else this.host.resync(this, 'log')
    }
    return false
  }

  /** @internal A snapshot read after a push (pull): taken when the push committed the in-flight op and nothing else is local. */
  takeSnapshotAfterPush(snap: TaskSnapshot): boolean {
    return this.takeAfterPush(snap)
  }

  /**
   * Takes `snap` as the base when the in-flight op is known committed (pushed) at a rev and
   * nothing else is local: at or after that rev the snapshot holds the op (acknowledged now);
   * before it, the op comes on the stream after the snapshot, recognised by its seq.
   */
  private takeAfterPush(snap: TaskSnapshot): boolean {
    const f = this.inflight
    const pushed = this.pushedCommit
    if (!this.base || !f || f.kind !== 'op' || !pushed || pushed.seq !== f.seq || this.pendingOp || this.uncertain || snap.rev <= this.base.rev) return false
    this.pushedCommit = null
    if (snap.rev >= pushed.rev) {
      this.inflight = null
      this.heldAck = null
      this.base = snap
      this.divergent = false
      this.ownRevs.clear()
      this.rememberOwn(pushed.rev, f.seq)
      this.view = this.rebuildView()
      this.changed({ local: false, op: null })
      this.resolveReady()
      this.drainFuture()
      this.afterCommit({ seq: f.seq, rev: pushed.rev, noop: false, count: f.count })
      return true
    }
    this.replaceBase(snap)
    // replaceBase made it uncertain: its commit comes on the stream, matched by its seq (so taken
    // as committed, never as a no-op); held meanwhile, never resent.
    if (this.inflight?.seq === f.seq) this.heldAck = { rev: pushed.rev, noop: true }
    return true
  }

  /** Whether the task must be subscribed on a new connection (a local create subscribes after its ack). */
  wantsSubscription(): boolean {
    // A confirmed deletion is final: nothing more will be committed to follow.
    return this.open && !this.missing && !(this.base?.rev === 0) && !this.base?.deleted
  }

  /** The `since` rev for a resume, or undefined when a snapshot is needed. */
  since(): number | undefined {
    return this.base && this.base.rev > 0 ? this.base.rev : undefined
  }

  /** @internal What storage keeps for this task (null before it is loaded). */
  toStored(): StoredTask | null {
    if (!this.base) return null
    if (this.pendingOp) this.pendingWritten = true
    // Storage may keep the object as it is: never changed in place from now on.
    this.owned.delete(this.base.customFields)
    return {
      id: this.id,
      base: this.base,
      inflight: this.inflight,
      uncertain: this.uncertain || undefined,
      pending: this.pendingOp,
      pendingCount: this.pendingCount,
    }
  }

  /** Restores what storage kept (the inflight was recorded before it was ever sent). */
  restore(s: StoredTask): void {
    this.base = s.base
    this.inflight = s.inflight
    this.uncertain = s.uncertain ?? false
    this.pendingOp = s.pending
    this.pendingCount = s.pendingCount
    this.durableSeq = s.inflight?.seq ?? 0
    this.pendingWritten = !!s.pending
    this.view = this.rebuildView()
    this.history.start(this.view)
    this.resolveReady()
  }

  /** Starts a local create: rev 0 until the server acknowledges it. */
  startCreate(init: TaskInit, projectId: string | null): void {
    const content = contentFromInit(createInit(init, projectId))
    this.base = unborn(this.id, taskType.create(), this.host.userId)
    this.view = content
    this.history.start(content)
    this.inflight = { kind: 'create', seq: this.host.nextSeq(), task: init, projectId, count: 1 }
    this.afterNewInflight()
    this.resolveReady()
  }

  // ---- sending ----------------------------------------------------------

  /** Sends what can be sent now: promotes pending to in flight, (re)sends the in-flight mutation. */
  flush(): void {
    if (!this.base || !this.open) return
    if (!this.inflight && this.pendingOp) {
      if (isEmpty(this.pendingOp)) {
        this.pendingOp = null
        this.pendingCount = 0
        this.host.settled()
        return
      }
      const seq = this.host.nextSeq()
      this.inflight = { kind: 'op', seq, op: this.pendingOp, baseRev: this.rev, count: this.pendingCount }
      this.unsentSeq = seq
      // Sent at once, written meanwhile, when no write holds any of it and its seq cannot be handed out again after a restart.
      const overlap = !this.pendingWritten && this.host.seqReserved(seq)
      this.pendingOp = null
      this.pendingCount = 0
      this.pendingWritten = false
      this.afterNewInflight(overlap)
      return
    }
    const f = this.inflight
    if (!f || this.durableSeq !== f.seq || this.heldAck || this.host.epoch === 0 || this.sentEpoch === this.host.epoch) return
    if (this.host.busy(this)) return
    if (f.kind === 'create') {
      this.sentEpoch = this.host.epoch
      this.host.send({ type: 'create', taskId: this.id, projectId: f.projectId, seq: f.seq, task: f.task as Record<string, unknown> })
      return
    }
    if (!this.isSubscribed()) return
    if (!this.uncertain && isEmpty(f.op)) {
      // Transformed away (e.g. by a concurrent delete or a higher priority) before it was sent: nothing to commit.
      this.inflight = null
      this.flush()
      this.host.settled()
      return
    }
    // After a snapshot replaced the base, the op is still expressed against the rev it was built on.
    if (!this.uncertain) f.baseRev = this.rev
    this.sentEpoch = this.host.epoch
    this.unsentSeq = 0
    this.host.send({ type: 'op', taskId: this.id, baseRev: f.baseRev, seq: f.seq, op: f.op as Record<string, unknown> })
  }

  /**
   * Records the new in-flight mutation durably, then sends it; or, for an op
   * whose content no write has taken (`overlap`), sends it while it is
   * written: why no edit is lost or doubled if the tab dies in between is in
   * docs/protocol.md ("Sending before the write"). Creates and reissues under a
   * fresh seq are always written first.
   */
  private afterNewInflight(overlap = false): void {
    const seq = this.inflight!.seq
    this.sentEpoch = 0
    this.retries = 0
    if (overlap) {
      this.durableSeq = seq
      void this.host.persist(this.id)
      this.flush()
      return
    }
    this.host.persist(this.id).then(() => {
      if (this.inflight?.seq === seq) {
        this.durableSeq = seq
        this.flush()
      }
    })
  }

  /** The connection dropped: everything must be sent again on the next one. */
  disconnected(): void {
    this.sentEpoch = 0
    this.subscribedEpoch = 0
    this.presenceBox.clear()
  }

  /** The task is being subscribed again on the same socket: an unanswered in-flight op stays in flight there. */
  resubscribing(): void {
    this.subscribedEpoch = 0
  }

  // ---- server messages --------------------------------------------------

  /** @internal The server confirmed the subscription: resend presence and what is in flight. */
  onSubscribed(): void {
    this.subscribedEpoch = this.host.epoch
    this.presenceBox.resend()
    this.flush()
    this.host.settled()
  }

  /** A snapshot from the server (a first load, or a resume past the replay window). */
  onSnapshot(rev: number, task: TaskSnapshot, force = false): void {
    if (this.base && rev < this.base.rev && !force) return
    if (this.base && !force && !this.quiet) {
      // The in-flight op known committed by a push: the snapshot holds it, or the stream brings it.
      if (this.takeAfterPush({ ...task, rev })) return
      if (this.host.pushing?.(this) && !this.pendingOp && this.inflight?.kind === 'op' && !this.uncertain) {
        // Its push has not answered yet: decided when it does (pushEnded).
        if (!this.parked || rev > this.parked.rev) this.parked = { ...task, rev }
        return
      }
      // Local changes must be transformed past the exact missed ops: fetch them from the log.
      this.host.resync(this, 'log')
      return
    }
    this.replaceBase({ ...task, rev })
  }

  /** A committed op of the task (live, or replayed on resume, or read from the op log). */
  onOp(ev: CommittedOp): void {
    if (!this.base || !this.view) return
    if (this.divergent) {
      // Kept for after the snapshot (applied then if it follows on).
      if (ev.rev > this.base.rev && this.future.size < MAX_FUTURE) this.future.set(ev.rev, ev)
      return
    }
    if (ev.rev > this.base.rev + 1) {
      // Early: keep it until the revs before it arrive (from the socket or the log).
      if (this.future.size < MAX_FUTURE) this.future.set(ev.rev, ev)
      // (After a parked snapshot, the stream follows it: kept for when the push answers.)
      if (this.parked && ev.rev > this.parked.rev && this.future.size < MAX_FUTURE) return
      this.host.resync(this, 'log')
      return
    }
    this.applyCommitted(ev)
    this.drainFuture()
  }

  /** True while the task waits for a snapshot because a committed op did not apply to it. */
  get diverged(): boolean {
    return this.divergent
  }

  /** Applies the kept early ops that now follow on. */
  private drainFuture(): void {
    for (let next = this.future.get(this.rev + 1); next && this.base && !this.divergent; next = this.future.get(this.rev + 1)) {
      this.future.delete(next.rev)
      this.applyCommitted(next)
    }
    for (const rev of this.future.keys()) if (rev <= this.rev) this.future.delete(rev)
  }

  /**
   * A committed op that does not apply here means the local copy is not the
   * server's (a corrupted store, a bug): never throw into the socket handler;
   * report it and reload the task from a snapshot (local changes are re-applied on it).
   */
  private divergedOn(ev: CommittedOp, err: unknown): void {
    if (this.future.size < MAX_FUTURE) this.future.set(ev.rev, ev)
    this.divergent = true
    this.cached = null
    this.host.diverged(this, new TaskSyncError('internal', `task ${this.id}: the op at rev ${ev.rev} does not apply to the local copy (${(err as Error)?.message ?? err}); reloading it from a snapshot`))
  }

  private applyCommitted(ev: CommittedOp): void {
    try {
      this.applyCommittedOp(ev)
    } catch (err) {
      this.divergedOn(ev, err)
    }
  }

  private applyCommittedOp(ev: CommittedOp): void {
    if (!this.base || !this.view) return
    if (ev.rev <= this.base.rev) {
      const own = this.ownRevs.get(ev.rev)
      // We took an ack for a commit at this rev, but the log says someone else's op is there.
      if (own !== undefined && !(ev.clientId === this.host.clientId && ev.seq === own)) this.host.resync(this, 'snapshot')
      return
    }
    const f = this.inflight
    const info = { rev: ev.rev, deviceId: ev.deviceId, userId: ev.userId, at: ev.at }
    if (f && ev.clientId === this.host.clientId && ev.seq === f.seq) {
      // Our in-flight mutation, committed but not acknowledged (the ack was lost with the connection).
      if (f.kind === 'create') return this.createCommitted(ev.rev)
      this.inflight = null
      this.heldAck = null
      this.rememberOwn(ev.rev, f.seq)
      if (this.uncertain) {
        // Its effect is not in the view: take it like anyone else's op.
        this.uncertain = false
        this.applyRemote(ev.op, info)
      } else {
        this.base = commitOnto(this.base, ev.op, info)
        this.cached = null
      }
      this.afterCommit({ seq: f.seq, rev: ev.rev, noop: false, count: f.count })
      return
    }
    if (this.heldAck && this.heldAck.rev === ev.rev && !this.heldAck.noop) {
      // The ack we held claimed this rev, but it belongs to another client: ours committed nothing.
      this.heldAck = { rev: ev.rev, noop: true }
    }
    this.applyRemote(ev.op, info)
    this.releaseHeldAck()
  }

  /**
   * The server acknowledged `seq`: committed at `rev`, or (`noop`) committed
   * nothing, `rev` being then the current rev. A REST push result does not tell
   * the two apart (`fromPush`): it is settled by the op log the client reads
   * next, where the op shows at `rev` if it committed.
   */
  onAck(seq: number, rev: number | undefined, noop = false, fromPush = false): boolean {
    const f = this.inflight
    if (!f || f.seq !== seq || !this.base) return false
    if (f.kind === 'create') {
      this.createCommitted(rev ?? 1)
      return true
    }
    const current = this.base.rev
    const at = rev ?? current
    if (at > current && (fromPush || noop)) {
      // Wait for the stream: our op at `at` is a commit (it is recognised by its seq), anything else a no-op.
      this.heldAck = { rev: at, noop: true }
      return true
    }
    if (this.uncertain) {
      this.inflight = null
      this.uncertain = false
      this.heldAck = null
      // Committed after our base: its committed form is unknown here, so reload.
      if (at > current) this.host.resync(this, 'snapshot')
      this.afterCommit({ seq, rev: at, noop, count: f.count })
      return true
    }
    if (noop || isEmpty(f.op) || at <= current) this.dropInflightNoop()
    else if (at === current + 1) this.commitInflight(at)
    else this.heldAck = { rev: at, noop: false }
    return true
  }

  /**
   * The server holds this task at an older rev than this client (`snap.rev` <
   * `rev`: it was restored from a backup). Its snapshot becomes the base: the revs
   * after it are gone from the server, whoever made them. Every unacknowledged
   * local change is kept, rebased onto the snapshot as if those revs had been
   * undone concurrently, and goes again as one new mutation under a fresh seq (the
   * one in flight was sent to a history the server no longer has; its seq is not
   * reused for a different op). Answers how many local changes were kept.
   */
  onServerBehind(snap: TaskSnapshot): number {
    if (!this.base || !this.view || snap.rev >= this.base.rev) return 0
    const from = contentOf(this.base)
    const f = this.inflight?.kind === 'op' ? this.inflight : null
    let count = this.pendingCount + (f?.count ?? 0)
    let local: TaskOp | null = this.pendingOp
    try {
      if (f && !this.uncertain) local = local ? taskType.compose(f.op, local) : f.op
      else if (f) {
        // Its effect is not in the view (a snapshot replaced the base while it was in flight): taken as made on the base, before the later ones.
        taskType.apply(from, f.op)
        local = local ? taskType.compose(f.op, taskType.transform(local, f.op, 'left')) : f.op
      }
      if (local) local = rebaseOnto(from, contentOf(snap), local)
    } catch (err) {
      if (local) this.reportConflict({ kind: 'lost', message: `local changes do not apply to the server's older copy: ${(err as Error).message}`, op: local })
      local = null
    }
    if (!local || isEmpty(local)) {
      local = null
      count = 0
    }
    this.inflight = null
    this.uncertain = false
    this.heldAck = null
    this.sentEpoch = 0
    this.retries = 0
    this.divergent = false
    this.ownRevs.clear()
    this.future.clear()
    this.base = { ...snap }
    this.pendingOp = local
    this.pendingCount = count
    this.view = this.rebuildView()
    this.changed({ local: false, op: null })
    // Promotes the rebased changes to a new in-flight mutation (fresh seq), recorded before it is sent.
    this.flush()
    void this.host.persist(this.id)
    this.host.settled()
    return count
  }

  /** The server refused the in-flight mutation with `code`. */
  onRejected(code: ErrorCode, message: string): void {
    const f = this.inflight
    if (!f) return
    this.sentEpoch = 0
    if ((code === 'unavailable' || code === 'internal' || code === 'rate_limited' || code === 'unauthorized') && this.host.retryLater(this, this.retries + 1)) {
      this.retries++
      return
    }
    if (code === 'already_exists' && this.reissue(f)) return
    // (After a snapshot replaced the base, the op is expressed against a rev the client can no longer
    // transform from: refused as too old, it is rolled back rather than resent.)
    if (code === 'rev_too_old' && this.retries < 3 && f.kind === 'op' && !this.uncertain) {
      // Not committed by this attempt: catch up from the log, then send it again under the SAME seq, so
      // that another attempt of it that did commit (a push racing a resend) is recognised, never doubled.
      this.retries++
      this.host.resync(this, 'log')
      return
    }
    this.rollback(code, message)
  }

  /**
   * `already_exists` for the in-flight mutation: another writer sharing this
   * clientId used its seq for a different mutation, and nothing of ours was
   * committed under it. The same edit goes again under a fresh seq (rebased
   * like any in-flight op, as ops arrive). A create refused again after that
   * means its task id is taken: rolled back. False when it gives up.
   */
  private reissue(f: TaskMutation): boolean {
    const n = f.reissues ?? 0
    if (n >= MAX_REISSUES || (f.kind === 'create' && n > 0)) return false
    f.reissues = n + 1
    f.seq = this.host.freshSeq()
    this.heldAck = null
    this.afterNewInflight()
    return true
  }

  /** The task is deleted on the server (answer to a subscribe or resume). */
  onTaskDeleted(rev: number): void {
    if (!this.base) {
      this.replaceBase({ ...unborn(this.id, { ...taskType.create(), deleted: true }, undefined), rev })
      return
    }
    const dropped = this.dropLocal()
    this.base = { ...this.base, ...taskType.create(), deleted: true, rev: Math.max(rev, this.base.rev) }
    this.view = contentOf(this.base)
    this.cached = null
    if (dropped) this.reportConflict({ kind: 'rejected', code: 'task_deleted', message: `task ${this.id} was deleted`, op: dropped })
    this.changed({ local: false, op: null })
    void this.host.persist(this.id)
  }

  /** The server says the task does not exist or cannot be seen. */
  onMissing(message: string): void {
    this.missing = new TaskSyncError('not_found', message)
    for (const w of this.readyWaiters.splice(0)) w.reject(this.missing)
    const dropped = this.base ? this.dropLocal() : null
    if (dropped) this.reportConflict({ kind: 'rejected', code: 'not_found', message, op: dropped })
    this.host.settled()
  }

  /** @internal Another client's presence (this client's own echo is ignored). */
  onPresence(clientId: string, userId: string, state: Record<string, unknown> | null): void {
    if (clientId !== this.host.clientId) this.presenceBox.received(clientId, userId, state)
  }

  /** A comment from the server; local unacknowledged changes to it stay on top. */
  onComment(c: Comment, hasLocalChange: boolean): void {
    if (hasLocalChange) return
    this.setComment(c, false)
  }

  /** @internal Stores a comment and emits `comment`. */
  setComment(c: Comment, local: boolean): void {
    this.commentBox.set(c, local)
  }

  /** A comment change was refused: back to `prev` (or gone, for a create). */
  commentRejected(commentId: string, prev: Comment | null, code: ErrorCode, message: string): void {
    this.commentBox.rollback(commentId, prev)
    this.reportConflict({ kind: 'comment', code, message, commentId })
  }

  // ---- transitions --------------------------------------------------------

  /** Takes another client's committed op: all of it or, if any step throws, nothing (the caller reloads). */
  private applyRemote(received: TaskOp, info: { rev: number; deviceId?: string; userId?: string; at?: string }): void {
    // Read once: the transforms and applies below take the op type's own result without reading it again.
    const op = taskType.normalize(received)
    let theirs = op
    const f = this.inflight
    let inflightOp: TaskOp | null = null
    if (f && f.kind === 'op' && !this.uncertain) {
      const ours = f.op
      inflightOp = taskType.transform(ours, theirs, 'left')
      theirs = taskType.transform(theirs, ours, 'right')
    }
    let pendingOp = this.pendingOp
    if (pendingOp) {
      const ours = pendingOp
      pendingOp = taskType.transform(ours, theirs, 'left')
      theirs = taskType.transform(theirs, ours, 'right')
    }
    // Checked on both copies before either changes (see prepareApply); they never share an owned object.
    if (this.view!.customFields === this.base!.customFields) this.owned.delete(this.view!.customFields)
    const nextView = prepareApply(this.view!, theirs, this.owned)
    const nextBase = prepareApply(this.base!, op, this.owned)
    const view = nextView()
    const base = withCommit(this.base!, nextBase(), info)
    if (inflightOp && f && f.kind === 'op') f.op = inflightOp
    this.pendingOp = pendingOp
    this.base = base
    this.view = view
    this.changed({ local: false, op: theirs })
    // Nothing local changed: the confirmed copy goes to storage with the next write (see TaskHost.persistSoon).
    this.host.persistSoon(this.id)
  }

  private releaseHeldAck(): void {
    const h = this.heldAck
    if (!h || !this.inflight) return
    if (h.noop && this.rev >= h.rev) {
      this.heldAck = null
      this.dropInflightNoop()
    } else if (!h.noop && h.rev === this.rev + 1) {
      this.heldAck = null
      if (this.inflight.kind === 'op' && isEmpty(this.inflight.op)) this.dropInflightNoop()
      else this.commitInflight(h.rev)
    }
  }

  private commitInflight(rev: number): void {
    const f = this.inflight as Extract<TaskMutation, { kind: 'op' }>
    this.base = commitOnto(this.base!, f.op, { rev, deviceId: this.host.deviceId, userId: this.host.userId })
    this.cached = null
    this.rememberOwn(rev, f.seq)
    this.inflight = null
    this.afterCommit({ seq: f.seq, rev, noop: false, count: f.count })
  }

  /** The server committed nothing for the in-flight op: it must have become the identity here too. */
  private dropInflightNoop(): void {
    const f = this.inflight
    const wasUncertain = this.uncertain
    this.inflight = null
    this.uncertain = false
    // (An uncertain op's effect is not in the view: dropping it needs no reload.)
    if (f && f.kind === 'op' && !wasUncertain && !isEmpty(f.op)) {
      // Our view still holds an effect the server dropped: reload rather than diverge.
      this.host.resync(this, 'snapshot')
    }
    this.afterCommit(f ? { seq: f.seq, rev: this.rev, noop: true, count: f.count } : undefined)
  }

  private createCommitted(rev: number): void {
    const f = this.inflight as Extract<TaskMutation, { kind: 'create' }>
    const content = contentFromInit(createInit(f.task, f.projectId))
    const now = new Date().toISOString()
    const clock = this.host.deviceId ? { [this.host.deviceId]: 1 } : {}
    this.base = { ...content, id: this.id, rev, clock, createdAt: this.base!.createdAt, updatedAt: now, updatedBy: this.host.userId ?? '' }
    this.cached = null
    this.rememberOwn(rev, f.seq)
    this.inflight = null
    this.host.subscribe(this)
    this.afterCommit({ seq: f.seq, rev, noop: false, count: f.count })
  }

  private afterCommit(ack?: AckEvent): void {
    // Cleared before the ack event: a listener that edits sends the next op at once (sent before its
    // write), and clearing after it would send that op a second time on the same socket.
    this.sentEpoch = 0
    this.retries = 0
    if (ack) this.emit('ack', ack)
    this.flush()
    void this.host.persist(this.id)
    this.host.settled()
  }

  private rememberOwn(rev: number, seq: number): void {
    this.ownRevs.set(rev, seq)
    if (this.ownRevs.size > OWN_REVS_KEPT) this.ownRevs.delete(this.ownRevs.keys().next().value as number)
  }

  /** Undo a refused in-flight mutation; later local ops are kept where they still apply. */
  private rollback(code: ErrorCode, message: string): void {
    const f = this.inflight!
    this.inflight = null
    this.heldAck = null
    this.retries = 0
    if (f.kind === 'create') {
      this.missing = new TaskSyncError(code, message)
      this.pendingOp = null
      this.pendingCount = 0
      this.view = { ...taskType.create(), deleted: true }
      this.cached = null
      this.reportConflict({ kind: 'rejected', code, message, op: { delete: true } })
      this.changed({ local: true, op: null })
      this.host.settled()
      void this.host.persist(this.id)
      return
    }
    const wasUncertain = this.uncertain
    this.uncertain = false
    if (this.pendingOp && !wasUncertain) {
      try {
        this.pendingOp = withoutRejected(contentOf(this.base!), f.op, this.pendingOp)
      } catch {
        this.reportConflict({ kind: 'lost', code, message: 'later local changes depended on the refused one', op: this.pendingOp })
        this.pendingOp = null
        this.pendingCount = 0
      }
    }
    this.view = this.rebuildView()
    this.reportConflict({ kind: 'rejected', code, message, op: f.op })
    this.changed({ local: true, op: null })
    this.afterCommit()
  }

  /** A fresh base from the server; local changes are re-applied on it where they still fit. */
  private replaceBase(snap: TaskSnapshot): void {
    const f = this.inflight
    // Keep the rev the in-flight op is expressed against: it is resent against that rev.
    if (f?.kind === 'op' && !this.uncertain && this.base) f.baseRev = this.base.rev
    this.base = snap
    this.divergent = false
    this.ownRevs.clear()
    this.heldAck = null
    // An in-flight op sent against an older base may or may not be inside this snapshot.
    if (this.inflight?.kind === 'op') this.uncertain = true
    this.view = this.rebuildView()
    this.changed({ local: false, op: null })
    this.resolveReady()
    this.drainFuture()
    this.flush()
    void this.host.persist(this.id)
    this.host.settled()
  }

  /** base (+ inflight when it is not uncertain) + pending, dropping what no longer applies. */
  private rebuildView(): TaskContent {
    // The view starts as the base's content: the two must not share an object that changes in place.
    this.owned.delete(this.base!.customFields)
    let v = contentOf(this.base!)
    const f = this.inflight
    if (f && f.kind === 'create') v = contentFromInit(createInit(f.task, f.projectId))
    else if (f && !this.uncertain) {
      try {
        v = taskType.apply(v, f.op)
      } catch {
        this.uncertain = true
      }
    }
    if (this.pendingOp) {
      try {
        v = taskType.apply(v, this.pendingOp)
      } catch (err) {
        this.reportConflict({ kind: 'lost', message: `local changes no longer apply: ${(err as Error).message}`, op: this.pendingOp })
        this.pendingOp = null
        this.pendingCount = 0
      }
    }
    this.cached = null
    return v
  }

  /** Drops every local change (the task is gone); returns them composed, or null. */
  private dropLocal(): TaskOp | null {
    let dropped: TaskOp | null = null
    if (this.inflight?.kind === 'op') dropped = this.inflight.op
    if (this.pendingOp) dropped = dropped ? taskType.compose(dropped, this.pendingOp) : this.pendingOp
    this.inflight = null
    this.pendingOp = null
    this.pendingCount = 0
    this.heldAck = null
    this.uncertain = false
    return dropped
  }

  /** Emits `conflict` here and on the client (where a listener set before `connect()` also sees those found on restore). */
  private reportConflict(e: ConflictEvent): void {
    this.emit('conflict', e)
    this.host.conflict(this, e)
  }

  private changed(e: { local: boolean; op: TaskOp | null }): void {
    this.cached = null
    this.history.observe(e.local, e.op, this.view)
    this.emit('change', e)
    if (this.view?.deleted && !this.deletedSent) {
      this.deletedSent = true
      this.emit('deleted', { rev: this.rev })
    }
  }

  private resolveReady(): void {
    for (const w of this.readyWaiters.splice(0)) w.resolve()
  }

  private requireView(): TaskContent {
    if (this.host.closed) throw new TaskSyncError('unavailable', 'the client is closed')
    if (!this.view) throw new TaskSyncError('not_found', `task ${this.id} is not loaded yet`)
    if (this.missing) throw this.missing
    return this.view
  }
}
