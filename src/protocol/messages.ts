/**
 * WebSocket wire messages (PROTOCOL.md section 3). Client → server messages are
 * TypeBox schemas (validated by the gateway); server → client messages are types.
 * Shared by the server and the client SDK: no Node or framework imports here.
 */
import { Type, type Static } from 'typebox'
import type { ErrorCode } from './errors.js'
import type { TaskOp, TaskSnapshot } from '../domain/types.js'

export type { TaskInit } from '../domain/types.js'

const Uuid = Type.String({ format: 'uuid' })
/** A client's mutation counter: stored as bigint, so at most 2^53 − 1 (a safe JSON integer). */
export const Seq = Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER })
/** A task rev as a client names it: stored as a 32-bit integer. */
export const Rev = Type.Integer({ minimum: 0, maximum: 2_147_483_647 })
const AnyObject = Type.Record(Type.String(), Type.Unknown())

export const HelloMsg = Type.Object({ type: Type.Literal('hello'), clientId: Uuid })
export const SubscribeMsg = Type.Object({
  type: Type.Literal('subscribe'),
  taskIds: Type.Optional(Type.Array(Uuid, { maxItems: 1000 })),
  projectIds: Type.Optional(Type.Array(Uuid, { maxItems: 1000 })),
  all: Type.Optional(Type.Boolean()),
  since: Type.Optional(Type.Record(Type.String(), Rev)),
})
export const UnsubscribeMsg = Type.Object({
  type: Type.Literal('unsubscribe'),
  taskIds: Type.Optional(Type.Array(Uuid, { maxItems: 1000 })),
  projectIds: Type.Optional(Type.Array(Uuid, { maxItems: 1000 })),
  all: Type.Optional(Type.Boolean()),
})
export const CreateMsg = Type.Object({
  type: Type.Literal('create'),
  taskId: Uuid,
  projectId: Type.Optional(Type.Union([Uuid, Type.Null()])),
  seq: Seq,
  task: AnyObject,
})
export const OpMsg = Type.Object({
  type: Type.Literal('op'),
  taskId: Uuid,
  baseRev: Rev,
  seq: Seq,
  op: AnyObject,
})
export const PresenceMsg = Type.Object({
  type: Type.Literal('presence'),
  taskId: Uuid,
  state: Type.Union([AnyObject, Type.Null()]),
})
export const CommentMsg = Type.Object({
  type: Type.Literal('comment'),
  action: Type.Union([Type.Literal('create'), Type.Literal('edit'), Type.Literal('delete')]),
  commentId: Uuid,
  taskId: Uuid,
  seq: Seq,
  body: Type.Optional(Type.String()),
  parentId: Type.Optional(Type.Union([Uuid, Type.Null()])),
})
export const AuthMsg = Type.Object({ type: Type.Literal('auth'), token: Type.String({ minLength: 1 }) })
export const PingMsg = Type.Object({ type: Type.Literal('ping') })

export const ClientMessageSchemas = {
  hello: HelloMsg,
  subscribe: SubscribeMsg,
  unsubscribe: UnsubscribeMsg,
  create: CreateMsg,
  op: OpMsg,
  presence: PresenceMsg,
  comment: CommentMsg,
  auth: AuthMsg,
  ping: PingMsg,
} as const

export type ClientMessageType = keyof typeof ClientMessageSchemas
export type HelloMessage = Static<typeof HelloMsg>
export type SubscribeMessage = Static<typeof SubscribeMsg>
export type UnsubscribeMessage = Static<typeof UnsubscribeMsg>
export type CreateMessage = Static<typeof CreateMsg>
export type OpMessage = Static<typeof OpMsg>
export type PresenceMessage = Static<typeof PresenceMsg>
export type CommentMessage = Static<typeof CommentMsg>
export type AuthMessage = Static<typeof AuthMsg>
export type PingMessage = Static<typeof PingMsg>
export type ClientMessage =
  | HelloMessage
  | SubscribeMessage
  | UnsubscribeMessage
  | CreateMessage
  | OpMessage
  | PresenceMessage
  | CommentMessage
  | AuthMessage
  | PingMessage

/** Comment as stored and sent (PROTOCOL.md section 1). */
export interface Comment {
  id: string
  taskId: string
  parentId: string | null
  authorId: string
  body: string
  createdAt: string
  editedAt: string | null
  editCount: number
  deleted: boolean
}

/**
 * A file attached to a task (docs/protocol.md, "Attachments"). Visible once its
 * upload completed; a deleted one is its tombstone (`deleted: true`).
 */
export interface Attachment {
  id: string
  taskId: string
  /** The sanitised file name. */
  name: string
  contentType: string
  /** Bytes. */
  size: number
  /** Lowercase hex SHA-256 of the bytes. */
  sha256: string
  createdBy: string
  createdAt: string
  deleted: boolean
  /** True when a thumbnail (WebP, at most 256 px) is stored beside the file. */
  thumbnail: boolean
}

/** A committed op as delivered to subscribers and listed by `GET /api/tasks/:id/ops`. */
export interface OpEvent {
  type: 'op'
  taskId: string
  rev: number
  op: TaskOp
  userId: string
  deviceId: string
  clientId: string | null
  seq: number | null
  at: string
}

export type ServerMessage =
  | { type: 'welcome'; sessionId: string; instanceId: string; serverTime: string; heartbeatMs: number }
  | { type: 'subscribed'; taskIds: string[]; projectIds: string[]; all: boolean }
  | { type: 'unsubscribed'; taskIds: string[]; projectIds: string[]; all: boolean }
  | {
      type: 'ack'
      taskId: string
      seq: number
      rev?: number
      commentId?: string
      /** Optional: true when the op committed nothing (identity after transform); `rev` is then the current rev. */
      noop?: boolean
    }
  | OpEvent
  | { type: 'snapshot'; taskId: string; rev: number; task: TaskSnapshot }
  | { type: 'presence'; taskId: string; userId: string; clientId: string; state: Record<string, unknown> | null }
  | { type: 'comment'; taskId: string; comment: Comment }
  /** An attachment completed or deleted (a deleted one is its tombstone). */
  | { type: 'attachment'; taskId: string; attachment: Attachment }
  | { type: 'task_deleted'; taskId: string; rev: number }
  | { type: 'sync_required'; taskId?: string; all?: boolean; reason: string }
  | { type: 'authed'; expiresAt: string }
  | { type: 'pong'; serverTime: string }
  /** Something for the person in the app (docs/protocol.md, "Notifications"); only on that person's sockets. */
  | {
      type: 'notification'
      notification: {
        id: string
        kind: 'assigned' | 'mentioned' | 'commented' | 'due_soon' | 'overdue'
        taskId: string | null
        eventId: string
        title: string
        createdAt: string
        readAt: string | null
      }
    }
  /** `ref` names the task (or other entity); `seq`, when present, the mutation the error answers. */
  | { type: 'error'; code: ErrorCode; message: string; ref?: string | number; seq?: number }

