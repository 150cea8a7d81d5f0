/**
 * Wire shapes of the task and comment routes. Bodies are typed by JSON shape only
 * (a wrong JSON type is 400); what the op type decides (limits, unknown status,
 * priority range, text bounds) is checked by the domain and answers 422 invalid_op,
 * exactly as on the socket.
 */
import { Type, type TSchema } from 'typebox'
import type { TaskOp } from '../domain/types.js'
import { Uuid } from './schemas.js'
import { opContent } from './text.js'
import { Rev, Seq } from '../protocol/messages.js'

const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()])
const Json = Type.Unknown()
const Timestamp = Type.String({ format: 'date-time' })

export const TaskSnapshot = Type.Object({
  id: Uuid,
  projectId: Nullable(Uuid),
  rev: Type.Integer(),
  title: Type.String(),
  description: Type.String(),
  status: Type.String(),
  priority: Type.Integer(),
  tags: Type.Array(Type.String()),
  assigneeId: Nullable(Uuid),
  dueAt: Nullable(Timestamp),
  customFields: Type.Record(Type.String(), Json),
  clock: Type.Record(Type.String(), Type.Integer()),
  deleted: Type.Boolean(),
  createdAt: Timestamp,
  updatedAt: Timestamp,
  updatedBy: Uuid,
})

/** A task of a list; with `q`, how it matched. */
export const TaskListItem = Type.Object({
  ...TaskSnapshot.properties,
  match: Type.Optional(
    Type.Object({
      rank: Type.Number({ description: 'ts_rank of the hit: higher is better (hits the query matches on title and tags alone come before the others)' }),
      snippet: Type.String({ description: 'title and description around the matches, HTML-escaped, matches in <mark>…</mark>' }),
    }),
  ),
})

/** The content fields a create or a plain PATCH may carry; their text is the op type's to check (422). */
const contentFields = {
  title: Type.Optional(opContent(Type.String())),
  description: Type.Optional(opContent(Type.String())),
  status: Type.Optional(opContent(Type.String())),
  priority: Type.Optional(Type.Integer()),
  tags: Type.Optional(opContent(Type.Array(Type.String()))),
  assigneeId: Type.Optional(opContent(Nullable(Type.String()))),
  dueAt: Type.Optional(opContent(Nullable(Type.String()))),
  projectId: Type.Optional(opContent(Nullable(Type.String()))),
  customFields: Type.Optional(opContent(Type.Record(Type.String(), Json))),
}

/** Idempotency key of a mutation: both or neither. */
const mutationKey = {
  clientId: Type.Optional(Uuid),
  seq: Type.Optional(Seq),
}

export const CreateTaskBody = Type.Object(
  { id: Type.Optional(Uuid), ...contentFields, title: opContent(Type.String()), ...mutationKey },
  { additionalProperties: false },
)

/** `{op, baseRev?}` or plain field values; both may carry clientId and seq. */
export const PatchTaskBody = Type.Object(
  {
    op: Type.Optional(opContent(Type.Record(Type.String(), Json))),
    baseRev: Type.Optional(Rev),
    ...contentFields,
    ...mutationKey,
  },
  { additionalProperties: false },
)

export const TaskListQuery = Type.Object({
  projectId: Type.Optional(Uuid),
  status: Type.Optional(Type.String({ maxLength: 32 })),
  assigneeId: Type.Optional(Uuid),
  tag: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
  q: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'full-text search, websearch syntax: words, "a phrase", -excluded, or' })),
  cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 512 })),
  limit: Type.Integer({ minimum: 1, maximum: 500, default: 50 }),
})

const PastRev = Type.Integer({ minimum: 1, maximum: 2_147_483_647 })

export const RevQuery = Type.Object({ rev: Type.Optional(PastRev) })

export const DiffQuery = Type.Object({ from: PastRev, to: PastRev })

export const FieldDiff = Type.Object({
  from: Json,
  to: Json,
  changedBy: Type.Array(Uuid, { description: 'users who changed the field in (from, to], in the order of their first change' }),
  changes: Type.Integer({ description: 'revs in (from, to] that changed the field' }),
})

export const TaskDiff = Type.Object({
  taskId: Uuid,
  from: Type.Integer(),
  to: Type.Integer(),
  fields: Type.Record(Type.String(), FieldDiff, { description: 'by field name: only the fields changed in (from, to] or different between the two revs' }),
})

export const OpsQuery = Type.Object({
  from: Type.Integer({ minimum: 0, maximum: 2_147_483_647, default: 1 }),
  limit: Type.Integer({ minimum: 1, maximum: 1000, default: 1000 }),
})

/** A task op (PROTOCOL.md section 2), documented as an object; the op type validates it. */
const TaskOpSchema = Type.Unsafe<TaskOp>(Type.Record(Type.String(), Json))

export const OpEvent = Type.Object({
  type: Type.Literal('op'),
  taskId: Uuid,
  rev: Type.Integer(),
  op: TaskOpSchema,
  userId: Uuid,
  deviceId: Uuid,
  clientId: Nullable(Uuid),
  seq: Nullable(Type.Integer()),
  at: Timestamp,
})

export const HistoryEntry = Type.Object({
  rev: Type.Integer(),
  userId: Uuid,
  deviceId: Uuid,
  at: Timestamp,
  changes: Type.Record(Type.String(), Type.Object({ from: Json, to: Json })),
  /** Attachments added or removed while the task was at this rev (docs/protocol.md, "Attachments"). */
  attachments: Type.Optional(
    Type.Array(
      Type.Object({
        attachmentId: Uuid,
        action: Type.Union([Type.Literal('attached'), Type.Literal('removed')]),
        name: Type.String(),
        size: Type.Integer(),
        userId: Uuid,
        deviceId: Uuid,
        at: Timestamp,
      }),
    ),
  ),
})

export const Comment = Type.Object({
  id: Uuid,
  taskId: Uuid,
  parentId: Nullable(Uuid),
  authorId: Uuid,
  body: Type.String(),
  createdAt: Timestamp,
  editedAt: Nullable(Timestamp),
  editCount: Type.Integer(),
  deleted: Type.Boolean(),
})

export const CreateCommentBody = Type.Object(
  { id: Type.Optional(Uuid), body: Type.String(), parentId: Type.Optional(Nullable(Uuid)), ...mutationKey },
  { additionalProperties: false },
)

export const EditCommentBody = Type.Object({ body: Type.String(), ...mutationKey }, { additionalProperties: false })
