/**
 * REST catch-up (PROTOCOL.md section 5), the shapes shared by the server and the
 * client SDK: a push replays an offline queue of mutations and answers one result
 * per mutation; a pull answers every change after a cursor. The routes' request
 * and response schemas (http/sync.ts, http/sync-schemas.ts) validate these shapes.
 */
import type { ErrorCode } from './errors.js'
import type { Attachment, Comment } from './messages.js'
import type { TaskSnapshot } from '../domain/types.js'

/** A comment change inside a push (the mutation's taskId names its task). */
export interface PushComment {
  action: 'create' | 'edit' | 'delete'
  commentId: string
  body?: string
  parentId?: string | null
}

/** One mutation of a push: a create (`task`), an op (`op`, `baseRev`) or a comment change (`comment`). */
export interface PushMutation {
  seq: number
  kind: 'create' | 'op' | 'comment'
  taskId: string
  baseRev?: number
  op?: Record<string, unknown>
  task?: Record<string, unknown>
  comment?: PushComment
}

export interface PushBody {
  clientId: string
  mutations: PushMutation[]
}

/** What became of one mutation; `noop`: an applied op that committed nothing, `rev` is then the current rev. */
export interface PushResult {
  seq: number
  status: 'applied' | 'duplicate' | 'rejected'
  rev?: number
  noop?: true
  commentId?: string
  error?: { code: ErrorCode; message: string }
}

/** A deletion the device must apply; `rev` is the task's deleting rev. */
export interface Tombstone {
  kind: 'task' | 'comment' | 'attachment'
  id: string
  rev?: number
  /** For a comment or an attachment: its task. */
  taskId?: string
}

/** One page of a pull. */
export interface PullPage {
  tasks: TaskSnapshot[]
  comments: Comment[]
  /** Completed attachments changed since the cursor (deleted ones are tombstones). */
  attachments: Attachment[]
  tombstones: Tombstone[]
  cursor: string
  hasMore: boolean
  /** Highest committed seq of each clientId of the device, as far as the pages go. */
  lastSeq: Record<string, number>
}

/** A pull answers a page, or `reset` for a cursor it cannot continue (start over without one). */
export type PullAnswer = PullPage | { reset: true }
