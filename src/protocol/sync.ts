/**
 * REST catch-up (PROTOCOL.md section 5), the shapes shared by the server routes
 * and the client SDK: a push replays an offline queue of mutations and answers
 * one result per mutation; a pull answers every change after a cursor.
 */
import { Type, type Static } from 'typebox'
import type { ErrorCode } from './errors.js'
import type { Comment } from './messages.js'
import type { TaskSnapshot } from '../domain/types.js'

const Uuid = Type.String({ format: 'uuid' })
const AnyObject = Type.Record(Type.String(), Type.Unknown())

/** A comment change inside a push (the mutation's taskId names its task). */
export const PushCommentSchema = Type.Object({
  action: Type.Union([Type.Literal('create'), Type.Literal('edit'), Type.Literal('delete')]),
  commentId: Uuid,
  body: Type.Optional(Type.String()),
  parentId: Type.Optional(Type.Union([Uuid, Type.Null()])),
})

/** One mutation of a push: a create (`task`), an op (`op`, `baseRev`) or a comment change (`comment`). */
export const PushMutationSchema = Type.Object({
  seq: Type.Integer({ minimum: 1 }),
  kind: Type.Union([Type.Literal('create'), Type.Literal('op'), Type.Literal('comment')]),
  taskId: Uuid,
  baseRev: Type.Optional(Type.Integer({ minimum: 0 })),
  op: Type.Optional(AnyObject),
  task: Type.Optional(AnyObject),
  comment: Type.Optional(PushCommentSchema),
})

export const PushBodySchema = Type.Object({ clientId: Uuid, mutations: Type.Array(PushMutationSchema) })

/** What became of one mutation; `noop`: an applied op that committed nothing, `rev` is then the current rev. */
export const PushResultSchema = Type.Object({
  seq: Type.Integer(),
  status: Type.Union([Type.Literal('applied'), Type.Literal('duplicate'), Type.Literal('rejected')]),
  rev: Type.Optional(Type.Integer()),
  noop: Type.Optional(Type.Literal(true)),
  commentId: Type.Optional(Type.String()),
  error: Type.Optional(Type.Object({ code: Type.String(), message: Type.String() })),
})

export const PushResponseSchema = Type.Object({ results: Type.Array(PushResultSchema) })

export type PushComment = Static<typeof PushCommentSchema>
export type PushMutation = Static<typeof PushMutationSchema>
export type PushBody = Static<typeof PushBodySchema>
export type PushResult = Omit<Static<typeof PushResultSchema>, 'error'> & { error?: { code: ErrorCode; message: string } }

/** A deletion the device must apply; `rev` is the task's deleting rev. */
export interface Tombstone {
  kind: 'task' | 'comment'
  id: string
  rev?: number
  /** For a comment: its task. */
  taskId?: string
}

/** One page of a pull. */
export interface PullPage {
  tasks: TaskSnapshot[]
  comments: Comment[]
  tombstones: Tombstone[]
  cursor: string
  hasMore: boolean
  /** Highest committed seq of each clientId of the device, as far as the pages go. */
  lastSeq: Record<string, number>
}

/** A pull answers a page, or `reset` for a cursor it cannot continue (start over without one). */
export type PullAnswer = PullPage | { reset: true }
