/**
 * Types of the task op type (PROTOCOL.md section 2). Pure data, no behaviour.
 */

/** ot-text-unicode op: skip (number), insert (string), delete ({d: n}); positions in code points. */
export type TextOpComponent = number | string | { d: number }
export type TextOp = TextOpComponent[]

export type Status = 'todo' | 'in_progress' | 'in_review' | 'done' | 'cancelled'
export const STATUSES: readonly Status[] = ['todo', 'in_progress', 'in_review', 'done', 'cancelled']

export type JsonValue = null | boolean | number | string | JsonValue[] | { [k: string]: JsonValue }

/** The content fields of a task: what the op type works on. */
export interface TaskContent {
  title: string
  description: string
  status: Status
  priority: number
  tags: string[]
  assigneeId: string | null
  dueAt: string | null
  projectId: string | null
  customFields: Record<string, JsonValue>
  deleted: boolean
}

export interface SetOf<T> {
  set: T
}

export type CustomFieldEdit = { set: JsonValue } | { unset: true }

/** One edit of one task. `{}` is the identity. */
export interface TaskOp {
  title?: TextOp
  description?: TextOp
  status?: SetOf<Status>
  priority?: SetOf<number>
  tags?: { add?: string[]; remove?: string[] }
  assigneeId?: SetOf<string | null>
  dueAt?: SetOf<string | null>
  projectId?: SetOf<string | null>
  customFields?: Record<string, CustomFieldEdit>
  delete?: true
}

/** Initial content of a task in `create` (every field optional). */
export type TaskInit = Partial<Omit<TaskContent, 'deleted'>>

/** Metadata the server keeps beside the content. */
export interface TaskMeta {
  id: string
  rev: number
  clock: Record<string, number>
  createdAt: string
  updatedAt: string
  updatedBy: string
}

/** The task snapshot of PROTOCOL.md section 1: content plus metadata. */
export type TaskSnapshot = TaskContent & TaskMeta

/** Limits that protect the server (PROTOCOL.md section 1 defaults). */
export interface TaskLimits {
  titleMax: number
  descriptionMax: number
  tagsMax: number
  tagLengthMax: number
  customFieldsMax: number
  customFieldValueBytesMax: number
  customFieldDepthMax: number
  opBytesMax: number
  commentBodyMax: number
}

export const DEFAULT_LIMITS: Readonly<TaskLimits> = Object.freeze({
  titleMax: 1000,
  descriptionMax: 100_000,
  tagsMax: 50,
  tagLengthMax: 64,
  customFieldsMax: 64,
  customFieldValueBytesMax: 32 * 1024,
  customFieldDepthMax: 8,
  opBytesMax: 256 * 1024,
  commentBodyMax: 20_000,
})

/** A field two concurrent ops disagree on in a way a person should settle. */
export interface ConflictReport {
  field: 'status' | 'assigneeId'
  /** The value committed first (the one that stays). */
  committed: JsonValue
  /** The value of the op that arrived later. */
  incoming: JsonValue
}

/**
 * Plain new field values of a REST PATCH (PROTOCOL.md section 5): `tags`
 * replaces the set; `customFields` sets the keys listed, `null` unsets one.
 */
export interface TaskPatch {
  title?: string
  description?: string
  status?: Status
  priority?: number
  tags?: string[]
  assigneeId?: string | null
  dueAt?: string | null
  projectId?: string | null
  customFields?: Record<string, JsonValue>
}

/** One changed field in a task's history. */
export interface FieldChange {
  from: JsonValue
  to: JsonValue
}
