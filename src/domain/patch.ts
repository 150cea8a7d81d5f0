/**
 * REST helpers: a PATCH of plain field values turned into an op, and the
 * changed fields between two snapshots for the task history.
 */
import { applyOp } from './apply.js'
import { fail } from './errors.js'
import { finish } from './op.js'
import { textDiff } from './text.js'
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
  jsonEqual,
  objectKeys,
  onlyKeys,
} from './values.js'
import {
  DEFAULT_LIMITS,
  type CustomFieldEdit,
  type FieldChange,
  type JsonValue,
  type TaskContent,
  type TaskLimits,
  type TaskOp,
  type TaskPatch,
} from './types.js'

const PATCH_KEYS = ['title', 'description', 'status', 'priority', 'tags', 'assigneeId', 'dueAt', 'projectId', 'customFields'] as const

/**
 * The op that takes `current` to the values in `patch` (a TaskPatch from
 * untrusted JSON). Text fields become a minimal text edit; fields already
 * equal to the patch are left out, so a patch that changes nothing gives `{}`.
 * Throws InvalidOpError naming the field.
 */
export function opFromPatch(current: TaskContent, patch: TaskPatch | unknown, limits: TaskLimits = DEFAULT_LIMITS): TaskOp {
  const p = onlyKeys(patch, PATCH_KEYS, 'patch')
  const op: TaskOp = {}
  if (hasOwn(p, 'title')) op.title = textDiff(current.title, checkString(p.title, 'title'))
  if (hasOwn(p, 'description')) op.description = textDiff(current.description, checkString(p.description, 'description'))
  const set = <K extends 'status' | 'priority' | 'assigneeId' | 'dueAt' | 'projectId'>(key: K, value: TaskContent[K]) => {
    if (value !== current[key]) (op as Record<string, unknown>)[key] = { set: value }
  }
  if (hasOwn(p, 'status')) set('status', checkStatus(p.status, 'status'))
  if (hasOwn(p, 'priority')) set('priority', checkPriority(p.priority, 'priority'))
  if (hasOwn(p, 'tags')) {
    const next = checkTagList(p.tags, 'tags', limits)
    const add = next.filter((t) => !current.tags.includes(t))
    const remove = current.tags.filter((t) => !next.includes(t))
    if (add.length > 0 || remove.length > 0) op.tags = { ...(add.length ? { add } : {}), ...(remove.length ? { remove } : {}) }
  }
  if (hasOwn(p, 'assigneeId')) set('assigneeId', checkUuidOrNull(p.assigneeId, 'assigneeId'))
  if (hasOwn(p, 'dueAt')) set('dueAt', checkDueAt(p.dueAt, 'dueAt'))
  if (hasOwn(p, 'projectId')) set('projectId', checkUuidOrNull(p.projectId, 'projectId'))
  if (hasOwn(p, 'customFields')) op.customFields = customFieldEdits(current, p.customFields, limits)
  const out = finish(op)
  applyOp(current, out, limits) // limits and text bounds, exactly as the commit will check them
  return out
}

function customFieldEdits(current: TaskContent, x: unknown, limits: TaskLimits): Record<string, CustomFieldEdit> {
  const keys = objectKeys(x, 'customFields')
  if (keys.length > limits.customFieldsMax) fail('customFields', `lists ${keys.length} keys, over the limit of ${limits.customFieldsMax}`)
  const edits: Record<string, CustomFieldEdit> = {}
  for (const key of keys) {
    const at = `customFields.${checkFieldKey(key, `customFields.${key}`)}`
    const had = hasOwn(current.customFields, key)
    const value = (x as Record<string, unknown>)[key]
    if (value === null) {
      if (had) edits[key] = { unset: true }
    } else {
      const v = checkCustomValue(value, at, limits)
      if (!had || !jsonEqual(current.customFields[key], v)) edits[key] = { set: v }
    }
  }
  return edits
}

const CONTENT_KEYS = [...PATCH_KEYS, 'deleted'] as const

/** The fields that differ between two contents, each with its old and new value. */
export function historyChanges(before: TaskContent, after: TaskContent): Record<string, FieldChange> {
  const changes: Record<string, FieldChange> = {}
  for (const key of CONTENT_KEYS) {
    const from = before[key] as JsonValue
    const to = after[key] as JsonValue
    if (!jsonEqual(from, to)) changes[key] = { from, to }
  }
  return changes
}
