/**
 * Public types of the client SDK: events of a task handle and what storage keeps.
 */
import type { ErrorCode } from '../protocol/errors.js'
import type { Comment, TaskInit } from '../protocol/messages.js'
import type { JsonValue, TaskOp, TaskSnapshot } from '../domain/types.js'

/** Connection state: `online` means resumed (every open task subscribed). */
export type ClientStatus = 'connecting' | 'syncing' | 'online' | 'offline'

/** A task changed. `op` is what was applied to the local snapshot; null when it was replaced whole (resync, rollback). */
export interface ChangeEvent {
  local: boolean
  op: TaskOp | null
}

/**
 * Something about a local change needs the app's attention:
 * - `rejected`: the server refused a local change (`code`: invalid_op,
 *   task_deleted, forbidden, not_found, too_large, …, or a transient error
 *   retried too often); it was rolled back, `op` holds what was undone.
 * - `lost`: local changes could not be re-applied after the task had to be
 *   reloaded from a snapshot (they no longer fit the text), `op` holds them.
 * - `comment`: a comment change was refused and rolled back (`commentId`).
 */
export interface ConflictEvent {
  kind: 'rejected' | 'lost' | 'comment'
  code?: ErrorCode
  message: string
  op?: TaskOp
  commentId?: string
}

/** Another client's presence on the task; `state` null means it left. */
export interface PresenceEvent {
  clientId: string
  userId: string
  state: Record<string, unknown> | null
}

/** A comment appeared or changed (local: made by this client, not yet necessarily acknowledged). */
export interface CommentEvent {
  comment: Comment
  local: boolean
}

/** A local mutation was acknowledged: committed at `rev`, or (`noop`) dropped by a concurrent change; `count` local changes it covered. */
export interface AckEvent {
  seq: number
  rev: number
  noop: boolean
  count: number
}

export interface TaskEvents {
  change: ChangeEvent
  ack: AckEvent
  presence: PresenceEvent
  deleted: { rev: number }
  conflict: ConflictEvent
  comment: CommentEvent
}

/** A local task mutation that owns a seq: in flight, or about to be. */
export type TaskMutation =
  | { kind: 'create'; seq: number; task: TaskInit; projectId: string | null; count: number; reissues?: number }
  | { kind: 'op'; seq: number; op: TaskOp; baseRev: number; count: number; reissues?: number }

/** What storage keeps for one open task (key `task:<id>`). */
export interface StoredTask {
  id: string
  /** The last snapshot confirmed by the server (rev 0 before a local create is acknowledged). */
  base: TaskSnapshot
  inflight: TaskMutation | null
  /** True when the in-flight op's fate is unknown after the base was replaced by a snapshot. */
  uncertain?: boolean
  pending: TaskOp | null
  pendingCount: number
}

/** A comment mutation of the outbox (key `comments`). */
export interface CommentMutation {
  seq: number
  taskId: string
  action: 'create' | 'edit' | 'delete'
  commentId: string
  body?: string
  parentId?: string | null
  /** The comment before this change, to roll back to if it is refused (null for a create). */
  prev: Comment | null
  retries?: number
  /** Times it was given a fresh seq after `already_exists` (its seq had been used by another writer). */
  reissues?: number
}

/** Client identity and counters (key `meta`). */
export interface StoredMeta {
  clientId: string
  /** The last seq handed out. */
  seq: number
  /**
   * Seqs up to this one may have been sent before the state that used them was
   * written (docs/protocol.md, "Sending before the write"): a writer restarting
   * on this slot goes on past it, never under a seq its earlier life may have used.
   */
  seqReserved?: number
  deviceId?: string
  pullCursor?: string
}

/** What `client.diff` answers: per field changed between the two revs. */
export interface TaskDiff {
  taskId: string
  from: number
  to: number
  fields: Record<string, { from: JsonValue; to: JsonValue; changedBy: string[]; changes: number }>
}

/** Filters of `client.searchTasks` (those of GET /api/tasks). */
export interface SearchFilters {
  projectId?: string
  status?: string
  assigneeId?: string
  tag?: string
  cursor?: string
  limit?: number
}

/** A search hit: the task snapshot and how it matched. */
export type SearchHit = TaskSnapshot & { match: { rank: number; snippet: string } }
