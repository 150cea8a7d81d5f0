/**
 * Applying a canonical op to task content. Never mutates its inputs: the
 * result is a new object; unchanged strings, the tags array and the custom
 * fields object when the op does not touch them, and custom field values are
 * shared (content is never changed in place).
 */
import { fail } from './errors.js'
import { applyText } from './text.js'
import { describe, isPlainObject, sortedSet } from './values.js'
import type { JsonValue, TaskContent, TaskLimits, TaskOp } from './types.js'

/** The content of a new task (PROTOCOL.md section 2). */
export function createContent(): TaskContent {
  return {
    title: '',
    description: '',
    status: 'todo',
    priority: 0,
    tags: [],
    assigneeId: null,
    dueAt: null,
    projectId: null,
    customFields: {},
    deleted: false,
  }
}

/** Cheap guard so a malformed snapshot fails as InvalidOpError, not as a TypeError deep inside. */
export function checkContent(s: unknown): asserts s is TaskContent {
  if (
    !isPlainObject(s) ||
    typeof s.title !== 'string' ||
    typeof s.description !== 'string' ||
    typeof s.status !== 'string' ||
    typeof s.priority !== 'number' ||
    !Array.isArray(s.tags) ||
    !isPlainObject(s.customFields) ||
    typeof s.deleted !== 'boolean'
  ) {
    fail('snapshot', `is not task content: ${describe(s)}`)
  }
}

/**
 * `op` (canonical, from readOp) applied to `s`. A deleted snapshot is returned
 * as it is; a delete gives the tombstone. Throws InvalidOpError when a text op
 * reaches past the end or the result would pass a limit.
 */
export function applyOp(s: TaskContent, op: TaskOp, limits: TaskLimits): TaskContent {
  checkContent(s)
  if (s.deleted) return s
  if (op.delete) return { ...createContent(), deleted: true }
  return {
    title: op.title ? applyText(s.title, op.title, limits.titleMax, 'title') : s.title,
    description: op.description ? applyText(s.description, op.description, limits.descriptionMax, 'description') : s.description,
    status: op.status ? op.status.set : s.status,
    priority: op.priority ? op.priority.set : s.priority,
    tags: op.tags ? applyTags(s.tags, op.tags, limits) : s.tags,
    assigneeId: op.assigneeId ? op.assigneeId.set : s.assigneeId,
    dueAt: op.dueAt ? op.dueAt.set : s.dueAt,
    projectId: op.projectId ? op.projectId.set : s.projectId,
    customFields: op.customFields ? applyCustomFields(s.customFields, op.customFields, limits) : s.customFields,
    deleted: false,
  }
}

// Counts are only enforced when they grow, so lowering a limit never blocks shrinking edits.
function applyTags(tags: string[], edit: NonNullable<TaskOp['tags']>, limits: TaskLimits): string[] {
  const remove = new Set(edit.remove ?? [])
  const next = sortedSet([...tags, ...(edit.add ?? [])].filter((t) => !remove.has(t)))
  if (next.length > limits.tagsMax && next.length > tags.length) {
    fail('tags', `task would have ${next.length} tags, over the limit of ${limits.tagsMax}`)
  }
  return next
}

function applyCustomFields(
  fields: Record<string, JsonValue>,
  edits: NonNullable<TaskOp['customFields']>,
  limits: TaskLimits,
): Record<string, JsonValue> {
  const next: Record<string, JsonValue> = { ...fields }
  let added = false
  for (const key of Object.keys(edits)) {
    const edit = edits[key]
    if ('set' in edit) {
      if (!added && !Object.hasOwn(next, key)) added = true
      next[key] = edit.set
    } else delete next[key]
  }
  // Only a new key can pass the limit (so the common edit of existing keys counts nothing).
  if (!added) return next
  const n = Object.keys(next).length
  if (n > limits.customFieldsMax && n > Object.keys(fields).length) {
    fail('customFields', `task would have ${n} custom fields, over the limit of ${limits.customFieldsMax}`)
  }
  return next
}
