/**
 * Wire shapes of the sync routes (push, pull, conflicts, sync log): they drive the
 * OpenAPI document and the serialization of every success answer.
 */
import { Type, type TSchema } from 'typebox'
import { Uuid } from './schemas.js'
import { Comment, TaskSnapshot } from './tasks-schemas.js'
import { Attachment } from './attachments-schemas.js'

const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()])
const Timestamp = Type.String({ format: 'date-time' })
const Json = Type.Unknown()

export const PushResult = Type.Object({
  seq: Type.Integer(),
  status: Type.Union([Type.Literal('applied'), Type.Literal('duplicate'), Type.Literal('rejected')]),
  rev: Type.Optional(Type.Integer()),
  noop: Type.Optional(Type.Literal(true)),
  commentId: Type.Optional(Uuid),
  error: Type.Optional(Type.Object({ code: Type.String(), message: Type.String() })),
})

export const PushAnswer = Type.Object({ results: Type.Array(PushResult) })

export const Tombstone = Type.Object({
  kind: Type.Union([Type.Literal('task'), Type.Literal('comment'), Type.Literal('attachment')]),
  id: Uuid,
  rev: Type.Optional(Type.Integer()),
  taskId: Type.Optional(Uuid),
})

export const PullPage = Type.Object({
  tasks: Type.Array(TaskSnapshot),
  comments: Type.Array(Comment),
  attachments: Type.Array(Attachment),
  tombstones: Type.Array(Tombstone),
  cursor: Type.String(),
  hasMore: Type.Boolean(),
  lastSeq: Type.Record(Type.String(), Type.Integer()),
})

/** A page of changes, or `{reset: true}`: start again without a cursor. */
export const PullAnswer = Type.Union([PullPage, Type.Object({ reset: Type.Literal(true) })])

export const Conflict = Type.Object({
  id: Uuid,
  taskId: Uuid,
  field: Type.Union([Type.Literal('status'), Type.Literal('assigneeId')]),
  committedValue: Json,
  incomingValue: Json,
  committedRev: Type.Integer(),
  incomingRev: Type.Integer(),
  incomingUserId: Uuid,
  status: Type.Union([Type.Literal('open'), Type.Literal('resolved')]),
  resolution: Nullable(Type.Object({ value: Json, choose: Type.Optional(Type.Union([Type.Literal('committed'), Type.Literal('incoming')])) })),
  resolvedBy: Nullable(Uuid),
  resolvedAt: Nullable(Timestamp),
  resolvedRev: Nullable(Type.Integer()),
  createdAt: Timestamp,
})

export const SyncLogItem = Type.Object({
  id: Type.Integer(),
  userId: Uuid,
  deviceId: Uuid,
  clientId: Nullable(Uuid),
  kind: Type.Union([Type.Literal('push'), Type.Literal('pull'), Type.Literal('resume')]),
  counts: Type.Record(Type.String(), Type.Number()),
  durationMs: Type.Integer(),
  at: Timestamp,
})
