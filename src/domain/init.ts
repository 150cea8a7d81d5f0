/**
 * Creating a task: its initial content, and the same content expressed as
 * an op on create() (rev 1 of the op log, so replaying the log from create()
 * gives the snapshot).
 */
import { applyOp, createContent } from './apply.js'
import { fail } from './errors.js'
import { finish } from './op.js'
import {
  checkCustomValue,
  checkDueAt,
  checkFieldKey,
  checkPriority,
  checkStatus,
  checkString,
  checkTagList,
  checkUuidOrNull,
  hasOwn,
  objectKeys,
  onlyKeys,
} from './values.js'
import { DEFAULT_LIMITS, type CustomFieldEdit, type TaskContent, type TaskInit, type TaskLimits, type TaskOp } from './types.js'

const INIT_KEYS = ['title', 'description', 'status', 'priority', 'tags', 'assigneeId', 'dueAt', 'projectId', 'customFields'] as const

/**
 * Validates the initial fields of a create (a TaskInit, from untrusted JSON:
 * every field optional, the others as in create()) and returns the content.
 * Throws InvalidOpError naming the field, for unknown keys, wrong types and
 * limits alike.
 */
export function contentFromInit(init: TaskInit | unknown, limits: TaskLimits = DEFAULT_LIMITS): TaskContent {
  const o = onlyKeys(init, INIT_KEYS, 'task')
  const op: TaskOp = {}
  if (hasOwn(o, 'title')) op.title = [checkString(o.title, 'title')]
  if (hasOwn(o, 'description')) op.description = [checkString(o.description, 'description')]
  if (hasOwn(o, 'status')) op.status = { set: checkStatus(o.status, 'status') }
  if (hasOwn(o, 'priority')) op.priority = { set: checkPriority(o.priority, 'priority') }
  if (hasOwn(o, 'tags')) op.tags = { add: checkTagList(o.tags, 'tags', limits) }
  if (hasOwn(o, 'assigneeId')) op.assigneeId = { set: checkUuidOrNull(o.assigneeId, 'assigneeId') }
  if (hasOwn(o, 'dueAt')) op.dueAt = { set: checkDueAt(o.dueAt, 'dueAt') }
  if (hasOwn(o, 'projectId')) op.projectId = { set: checkUuidOrNull(o.projectId, 'projectId') }
  if (hasOwn(o, 'customFields')) {
    const fields: Record<string, CustomFieldEdit> = {}
    const keys = objectKeys(o.customFields, 'customFields')
    if (keys.length > limits.customFieldsMax) fail('customFields', `has ${keys.length} keys, over the limit of ${limits.customFieldsMax}`)
    for (const key of keys) {
      const at = `customFields.${checkFieldKey(key, `customFields.${key}`)}`
      fields[key] = { set: checkCustomValue((o.customFields as Record<string, unknown>)[key], at, limits) }
    }
    op.customFields = fields
  }
  // Text ops with an empty insert are dropped by finish(); apply checks the limits.
  return applyOp(createContent(), finish(dropEmptyInserts(op)), limits)
}

function dropEmptyInserts(op: TaskOp): TaskOp {
  if (op.title?.[0] === '') delete op.title
  if (op.description?.[0] === '') delete op.description
  return op
}

/** The op that turns create() into `content`: how rev 1 appears in the op log. */
export function creationOp(content: TaskContent): TaskOp {
  if (content.deleted) return { delete: true }
  const fresh = createContent()
  const fields: Record<string, CustomFieldEdit> = {}
  for (const key of Object.keys(content.customFields)) fields[key] = { set: content.customFields[key] }
  return finish({
    title: content.title ? [content.title] : undefined,
    description: content.description ? [content.description] : undefined,
    status: content.status !== fresh.status ? { set: content.status } : undefined,
    priority: content.priority !== fresh.priority ? { set: content.priority } : undefined,
    tags: content.tags.length > 0 ? { add: [...content.tags] } : undefined,
    assigneeId: content.assigneeId !== null ? { set: content.assigneeId } : undefined,
    dueAt: content.dueAt !== null ? { set: content.dueAt } : undefined,
    projectId: content.projectId !== null ? { set: content.projectId } : undefined,
    customFields: fields,
  })
}
