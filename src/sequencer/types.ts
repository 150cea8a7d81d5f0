/**
 * The contract of the sequencer: the only code that assigns revs.
 */
import type { TaskOp, TaskSnapshot, ConflictReport } from '../domain/types.js'
import type { OpEvent, TaskInit } from '../protocol/messages.js'

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
  /** Snapshot after the commit. */
  snapshot: TaskSnapshot
  /** The committed op as subscribers get it; null when nothing was committed. */
  event: OpEvent | null
  conflicts: ConflictReport[]
}

/** What the sequencer publishes on the bus for every commit (channel per org). */
export interface CommitNotice {
  /** Publishing instance. */
  from: string
  orgId: string
  taskId: string
  rev: number
  projectId: string | null
  /** Project before this commit, when the op moved the task. */
  prevProjectId?: string | null
  event: OpEvent
}
