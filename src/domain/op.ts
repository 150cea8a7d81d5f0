/**
 * Reading an op: validate the shape of arbitrary input and return its
 * canonical form (what `normalize` answers). Checks that need the snapshot
 * (text bounds, counts after the edit) live in apply.ts.
 */
import { InvalidOpError, fail } from './errors.js'
import { readTextOp } from './text.js'
import {
  checkCustomValue,
  checkDueAt,
  checkFieldKey,
  checkPriority,
  checkStatus,
  checkTagList,
  checkUuidOrNull,
  describe,
  hasOwn,
  objectKeys,
  onlyKeys,
} from './values.js'
import { DEFAULT_LIMITS, type CustomFieldEdit, type TaskLimits, type TaskOp } from './types.js'

/** The keys of an op, in the order canonical ops list them. */
export const OP_KEYS = [
  'title',
  'description',
  'status',
  'priority',
  'tags',
  'assigneeId',
  'dueAt',
  'projectId',
  'customFields',
  'delete',
] as const

/** `{set: V}` with V checked by `check`. */
function readSet<T>(x: unknown, path: string, check: (v: unknown, path: string) => T): { set: T } {
  const o = onlyKeys(x, ['set'], path)
  if (!hasOwn(o, 'set')) fail(path, 'must be {set: value}')
  return { set: check(o.set, `${path}.set`) }
}

function readTags(x: unknown, path: string, limits: TaskLimits): TaskOp['tags'] {
  const o = onlyKeys(x, ['add', 'remove'], path)
  const add = hasOwn(o, 'add') ? checkTagList(o.add, `${path}.add`, limits) : []
  const remove = hasOwn(o, 'remove') ? checkTagList(o.remove, `${path}.remove`, limits) : []
  if (add.length === 0 && remove.length === 0) fail(path, 'needs at least one tag in add or remove')
  const both = add.find((t) => remove.includes(t))
  if (both !== undefined) fail(path, `tag ${JSON.stringify(both)} is in both add and remove`)
  return tagsEdit(add, remove)
}

/** A tags edit without its empty lists (undefined when both are empty). */
export function tagsEdit(add: string[], remove: string[]): TaskOp['tags'] {
  if (add.length === 0 && remove.length === 0) return undefined
  const edit: { add?: string[]; remove?: string[] } = {}
  if (add.length > 0) edit.add = add
  if (remove.length > 0) edit.remove = remove
  return edit
}

function readCustomFields(x: unknown, path: string, limits: TaskLimits): TaskOp['customFields'] {
  const out: Record<string, CustomFieldEdit> = {}
  const keys = objectKeys(x, path)
  if (keys.length > limits.customFieldsMax) fail(path, `edits ${keys.length} keys, over the limit of ${limits.customFieldsMax}`)
  for (const key of keys) {
    const at = `${path}.${key}`
    checkFieldKey(key, at)
    const edit = onlyKeys((x as Record<string, unknown>)[key], ['set', 'unset'], at)
    if (hasOwn(edit, 'set') === hasOwn(edit, 'unset')) fail(at, 'must be {set: value} or {unset: true}')
    if (hasOwn(edit, 'unset')) {
      if (edit.unset !== true) fail(`${at}.unset`, 'must be true')
      out[key] = { unset: true }
    } else out[key] = { set: checkCustomValue(edit.set, `${at}.set`, limits) }
  }
  return Object.keys(out).length > 0 ? out : undefined
}

/**
 * Validates `x` as a task op and returns its canonical form: keys in OP_KEYS
 * order, empty parts dropped, text ops merged, tag lists sorted and
 * deduplicated, dueAt in UTC with milliseconds, UUIDs lower-case, and
 * `{delete: true}` alone when the op deletes. Throws InvalidOpError.
 */
export function readOp(x: unknown, limits: TaskLimits): TaskOp {
  const o = onlyKeys(x, OP_KEYS, 'op')
  const op: TaskOp = {}
  if (hasOwn(o, 'title')) op.title = readTextOp(o.title, 'title')
  if (hasOwn(o, 'description')) op.description = readTextOp(o.description, 'description')
  if (hasOwn(o, 'status')) op.status = readSet(o.status, 'status', checkStatus)
  if (hasOwn(o, 'priority')) op.priority = readSet(o.priority, 'priority', checkPriority)
  if (hasOwn(o, 'tags')) op.tags = readTags(o.tags, 'tags', limits)
  if (hasOwn(o, 'assigneeId')) op.assigneeId = readSet(o.assigneeId, 'assigneeId', checkUuidOrNull)
  if (hasOwn(o, 'dueAt')) op.dueAt = readSet(o.dueAt, 'dueAt', checkDueAt)
  if (hasOwn(o, 'projectId')) op.projectId = readSet(o.projectId, 'projectId', checkUuidOrNull)
  if (hasOwn(o, 'customFields')) op.customFields = readCustomFields(o.customFields, 'customFields', limits)
  if (hasOwn(o, 'delete')) {
    if (o.delete !== true) fail('delete', `must be true, got ${describe(o.delete)}`)
    return { delete: true } // deletion wins over whatever else the op holds
  }
  return finish(op)
}

/** Drops the empty parts of an op built from canonical parts. */
export function finish(op: TaskOp): TaskOp {
  const out: TaskOp = {}
  if (op.delete) return { delete: true }
  if (op.title && op.title.length > 0) out.title = op.title
  if (op.description && op.description.length > 0) out.description = op.description
  if (op.status) out.status = op.status
  if (op.priority) out.priority = op.priority
  if (op.tags) out.tags = op.tags
  if (op.assigneeId) out.assigneeId = op.assigneeId
  if (op.dueAt) out.dueAt = op.dueAt
  if (op.projectId) out.projectId = op.projectId
  if (op.customFields && Object.keys(op.customFields).length > 0) out.customFields = op.customFields
  return out
}

/** True when the op does nothing (`{}` once normalized). */
export const isEmptyOp = (op: TaskOp): boolean => Object.keys(op).length === 0

/** True when `op` is valid and does nothing (normalizes to `{}`). */
export function isIdentity(op: unknown, limits: TaskLimits = DEFAULT_LIMITS): boolean {
  try {
    return isEmptyOp(readOp(op, limits))
  } catch (e) {
    if (e instanceof InvalidOpError) return false
    throw e
  }
}
