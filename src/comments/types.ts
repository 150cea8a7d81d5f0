/** What callers hand the comment service and what it answers. */
import type { Comment } from '../protocol/messages.js'
import type { CommentNotice } from '../bus/notices.js'
import type { Principal } from '../auth/principal.js'

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

/** Called synchronously, once per comment change of this instance, before it is published. */
export type CommentListener = (notice: CommentNotice) => void
