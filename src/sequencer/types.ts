/**
 * The contract of the sequencer: the only code that assigns revs.
 */
import type { TaskOp, TaskSnapshot, ConflictReport, TaskLimits } from '../domain/types.js'
import type { Comment, OpEvent, TaskInit } from '../protocol/messages.js'
import type { Bus } from '../bus/types.js'
import type { Database } from '../storage/db.js'

/** Who is asking: read from a verified access token. */
export interface Principal {
  orgId: string
  userId: string
  deviceId: string
  role: 'owner' | 'admin' | 'member' | 'viewer'
}

interface MutationBase {
  principal: Principal
  taskId: string
  /** Idempotency key; both null for a mutation without one (plain REST). */
  clientId: string | null
  seq: number | null
}

export interface CreateTaskRequest extends MutationBase {
  projectId?: string | null
  init: TaskInit
}

export interface SubmitOpRequest extends MutationBase {
  baseRev: number
  op: TaskOp
}

export interface CommitResult {
  taskId: string
  /** The rev of the commit (or the current rev for an identity op, the original rev for a duplicate). */
  rev: number
  duplicate: boolean
  /** The mutation committed nothing (an identity op), now or, for a duplicate, when it was first sent. */
  noop: boolean
  /** Snapshot after the commit. */
  snapshot: TaskSnapshot
  /** The committed op as subscribers get it; null when nothing was committed. */
  event: OpEvent | null
  conflicts: ConflictReport[]
}

/** What the sequencer publishes on the bus for every commit (channel per org). */
export interface CommitNotice {
  /** Distinguishes op commits from comment events on the same `org:<orgId>` channel. */
  kind: 'op'
  /** Publishing instance. */
  from: string
  orgId: string
  taskId: string
  rev: number
  projectId: string | null
  /** Project before this commit, when the op moved the task. */
  prevProjectId?: string | null
  /** The snapshot after this commit, when the op moved the task (subscribers of the new project get it). */
  snapshot?: TaskSnapshot
  event: OpEvent
}

/** A comment created, edited or deleted; published on `org:<orgId>` beside CommitNotices. */
export interface CommentNotice {
  kind: 'comment'
  /** Publishing instance. */
  from: string
  orgId: string
  taskId: string
  /**
   * The task's project as read when the change was checked (null: in no project),
   * so project subscribers are reached without a read. Absent from older publishers.
   */
  projectId?: string | null
  /** The comment after the change (a deleted one is its tombstone: `deleted: true`, empty body). */
  comment: Comment
  action: 'create' | 'edit' | 'delete'
  /** Who made the change (for a socket to skip echoing its own ack'd mutation). */
  clientId: string | null
  seq: number | null
}

/** Every payload on an `org:<orgId>` bus channel (JSON). */
export type OrgNotice = CommitNotice | CommentNotice

/** The bus channel of an organization (the bus adds its own prefix). */
export const orgChannel = (orgId: string): string => `org:${orgId}`

export interface SequencerLogger {
  warn(obj: unknown, msg?: string): void
  error(obj: unknown, msg?: string): void
  debug?(obj: unknown, msg?: string): void
}

export interface SequencerOptions {
  database: Database
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
  /** Commit statements in flight at once; more ready commits wait and are batched. Default 2 (1 on PGlite). */
  commitConcurrency?: number
  /** Test-only (TASKSYNC_FAULT): `ack-before-commit` answers an op as committed without waiting for its commit. */
  fault?: 'ack-before-commit'
}

/** Called synchronously, once per commit of this instance, after the commit and before it is published. */
export type CommitListener = (notice: CommitNotice) => void
/** Called synchronously, once per comment change of this instance, before it is published. */
export type CommentListener = (notice: CommentNotice) => void

export interface CommentCreateRequest {
  principal: Principal
  taskId: string
  commentId: string
  body: string
  parentId?: string | null
  clientId: string | null
  seq: number | null
}

export interface CommentEditRequest {
  principal: Principal
  commentId: string
  body: string
  clientId: string | null
  seq: number | null
  /** When given, the comment must belong to this task (the socket names it). */
  taskId?: string
}

export interface CommentDeleteRequest {
  principal: Principal
  commentId: string
  clientId: string | null
  seq: number | null
  taskId?: string
}

export interface CommentResult {
  comment: Comment
  /** True when (clientId, seq) was already committed: nothing changed. */
  duplicate: boolean
}
