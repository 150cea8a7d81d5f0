/**
 * The TaskStore port: everything the sequencer and the comment service read and
 * write, and nothing else. Two implementations keep it: PostgreSQL or PGlite
 * (postgres-task-store.ts) and memory (memory-task-store.ts), held to one
 * contract suite (test/storage/task-store-contract.ts). Types only: the
 * sequencer imports this file and never a driver.
 */
import type { JsonValue, TaskContent, TaskOp, TaskSnapshot } from '../domain/types.js'
import type { Comment, OpEvent } from '../protocol/messages.js'

/** The device a clientId belongs to. */
export interface ClientBinding {
  orgId: string
  userId: string
  deviceId: string
}

/** What the record of a committed (clientId, seq) says. */
export interface MutationRecord {
  clientId: string
  seq: number
  orgId: string
  kind: 'create' | 'op' | 'comment'
  taskId: string
  rev: number | null
  commentId: string | null
  /** The mutation's digest (sequencer/digest.ts); null on records written before digests were kept. */
  digest: string | null
}

/** The idempotency key written with a mutation, or none (both null). */
export interface MutationKey {
  clientId: string | null
  seq: number | null
  /** The mutation's digest, recorded with the key (null without one). */
  digest: string | null
  /** Who makes the change (the event's actor); absent: the comment's author. */
  actorId?: string
}

/** A conflict the commit records for a person to settle. */
export interface ConflictRow {
  id: string
  field: 'status' | 'assigneeId'
  committed: JsonValue
  incoming: JsonValue
  committedRev: number
}

/** Everything one commit writes: the new snapshot, its op, history, conflicts, tombstone and mutation record. */
export interface CommitRow {
  orgId: string
  taskId: string
  /** The rev the snapshot must still have (0 for a create). */
  prevRev: number
  rev: number
  content: TaskContent
  clock: Record<string, number>
  /** RFC 3339 commit time. */
  at: string
  userId: string
  deviceId: string
  clientId: string | null
  seq: number | null
  /** The mutation's digest, recorded with (clientId, seq). */
  digest: string | null
  op: TaskOp
  changes: Record<string, unknown>
  conflicts: ConflictRow[]
  /** The op deletes the task: write its tombstone. */
  tombstone: boolean
}

/**
 * What became of one row: written; not written because its (clientId, seq) is
 * already recorded; or not written because the task moved on (an op: its rev is
 * no longer prevRev) or already exists (a create).
 */
export type CommitOutcome = { kind: 'committed' } | { kind: 'duplicate'; record: MutationRecord } | { kind: 'lost' }

/** One committed op as stored. */
export type StoredOp = Omit<OpEvent, 'type' | 'taskId'>

/** A new comment. */
export interface NewComment {
  orgId: string
  id: string
  taskId: string
  parentId: string | null
  authorId: string
  body: string
  at: string
}

/** A task whose row is locked for the caller (inside a transaction on PostgreSQL). */
export interface LockedTask {
  /** The task as it is under the lock; null when the org has no such task. */
  readonly snapshot: TaskSnapshot | null
  loadOps(fromRev: number, limit: number): Promise<StoredOp[]>
  commit(row: CommitRow): Promise<CommitOutcome>
}

export interface TaskStore {
  /** Commit statements worth running at once (group-commit slots): 1 where the database runs one statement at a time. */
  readonly commitConcurrency: number
  /** The task's latest snapshot, or null when the org has no such task. */
  loadTask(orgId: string, taskId: string): Promise<TaskSnapshot | null>
  /** The latest snapshots of those of `taskIds` the org has, in one read (the others are left out; order unspecified). */
  loadTasks(orgId: string, taskIds: string[]): Promise<TaskSnapshot[]>
  /** Ops with rev ≥ fromRev in rev order, at most `limit`. */
  loadOps(orgId: string, taskId: string, fromRev: number, limit: number): Promise<StoredOp[]>
  /** True when the org has a project with this id (archived ones included). */
  projectExists(orgId: string, projectId: string): Promise<boolean>
  /** Binds clientId, within want.orgId, to the device unless already bound; answers the binding that holds. */
  claimClient(clientId: string, want: ClientBinding): Promise<ClientBinding>
  /** The record of a committed (clientId, seq) of the organization, or null. */
  findMutation(orgId: string, clientId: string, seq: number): Promise<MutationRecord | null>
  /** Records a mutation that wrote nothing else (an identity op); false when (clientId, seq) was recorded already. */
  recordMutation(record: MutationRecord): Promise<boolean>
  /** Creates a task at rev 1 (row.prevRev 0); `lost` when the org has a task with that id. */
  commitCreate(row: CommitRow): Promise<CommitOutcome>
  /**
   * Commits ops at once (group commit): rows of distinct tasks, or of one task a chain of
   * consecutive revs in rev order, written whole or not at all (a row not written is `lost`,
   * or `duplicate` when its own (clientId, seq) is recorded). One outcome per row, in order.
   */
  commitOps(rows: CommitRow[]): Promise<CommitOutcome[]>
  /** Runs `fn` with the task locked against every other commit until it settles. */
  withTaskLocked<T>(orgId: string, taskId: string, fn: (task: LockedTask) => Promise<T>): Promise<T>
  loadComment(orgId: string, id: string): Promise<Comment | null>
  /** Inserts a comment with its mutation record; null when the org already has one with this id. */
  insertComment(comment: NewComment, key: MutationKey): Promise<Comment | null>
  /** Replaces the body of a live comment; null when it is missing or deleted. */
  editComment(orgId: string, id: string, body: string, at: string, key: MutationKey): Promise<Comment | null>
  /** Turns a live comment into its tombstone (body cleared); null when it is missing or deleted. */
  deleteComment(orgId: string, id: string, at: string, key: MutationKey): Promise<Comment | null>
}
