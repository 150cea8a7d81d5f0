/**
 * What callers hand the sequencer and what it answers: task creation and ops,
 * each idempotent by an optional (clientId, seq).
 */
import type { ConflictReport, TaskInit, TaskOp, TaskPatch, TaskSnapshot } from '../domain/types.js'
import type { OpEvent } from '../protocol/messages.js'
import type { CommitNotice } from '../bus/notices.js'
import type { Principal } from '../auth/principal.js'
import { TaskSyncError } from '../protocol/errors.js'

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
  /**
   * The plain field values (REST PATCH) the op was derived from: the mutation is
   * then these values, digested as sent, since a resend derives another op from
   * the snapshot it finds.
   */
  patch?: TaskPatch
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

/** Called synchronously, once per commit of this instance, after the commit and before it is published. */
export type CommitListener = (notice: CommitNotice) => void

export interface SequencerLogger {
  warn(obj: unknown, msg?: string): void
  error(obj: unknown, msg?: string): void
  debug?(obj: unknown, msg?: string): void
}

/**
 * The idempotency key of a mutation: both or neither, a positive seq. Checked
 * once, first, by the sequencer and the comment service for every transport.
 */
export function checkMutationKey(key: { clientId: string | null; seq: number | null }): void {
  if ((key.clientId === null) !== (key.seq === null)) throw new TaskSyncError('bad_request', 'clientId and seq go together')
  if (key.seq !== null && (!Number.isSafeInteger(key.seq) || key.seq < 1)) throw new TaskSyncError('bad_request', 'seq must be a positive integer')
}
