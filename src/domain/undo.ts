/**
 * What per-user undo needs from the op type: the inverse of an op against the
 * content it applied to, and moving an undo past ops committed after it.
 *
 * An undo is not transformed like a concurrent op: it runs *after* the later
 * ops, and must keep their effect. So a value field a later op set is left
 * alone (the later value stays, whatever the field's merge rule), a tag or
 * custom field key a later op touched likewise, and text goes through the text
 * transform, which deletes exactly the characters still there and re-inserts
 * where the neighbours moved.
 */
import { fail } from './errors.js'
import { finish, tagsEdit } from './op.js'
import { readTextOp, transformText } from './text.js'
import { codePoints, hasOwn, jsonEqual } from './values.js'
import type { CustomFieldEdit, TaskContent, TaskOp, TextOp } from './types.js'

/** The text op undoing canonical `op` applied to `text`. */
export function invertText(text: string, op: TextOp): TextOp {
  const chars = Array.from(text)
  const out: TextOp = []
  let pos = 0
  for (const c of op) {
    if (typeof c === 'number') {
      out.push(c)
      pos += c
    } else if (typeof c === 'string') out.push({ d: codePoints(c) })
    else {
      out.push(chars.slice(pos, pos + c.d).join(''))
      pos += c.d
    }
  }
  return readTextOp(out, 'text') // merged into the canonical form
}

type ValueKey = 'status' | 'priority' | 'assigneeId' | 'dueAt' | 'projectId'
const VALUE_KEYS: readonly ValueKey[] = ['status', 'priority', 'assigneeId', 'dueAt', 'projectId']

/**
 * The op that takes `apply(before, op)` back to `before`, for a canonical `op`
 * valid on `before`. Only what the op really changed is undone: a set to the
 * value already there, or a tag added that was present, gives nothing. A
 * delete has no inverse (the tombstone is final): InvalidOpError.
 */
export function invertOp(op: TaskOp, before: TaskContent): TaskOp {
  if (before.deleted) return {}
  if (op.delete) fail('delete', 'a delete cannot be undone')
  const inv: Record<string, unknown> = {}
  if (op.title) inv.title = invertText(before.title, op.title)
  if (op.description) inv.description = invertText(before.description, op.description)
  for (const key of VALUE_KEYS) {
    const edit = op[key] as { set: unknown } | undefined
    if (edit && edit.set !== before[key]) inv[key] = { set: before[key] }
  }
  if (op.tags) {
    const had = new Set(before.tags)
    inv.tags = tagsEdit(
      (op.tags.remove ?? []).filter((t) => had.has(t)),
      (op.tags.add ?? []).filter((t) => !had.has(t)),
    )
  }
  if (op.customFields) {
    const fields: Record<string, CustomFieldEdit> = {}
    for (const key of Object.keys(op.customFields)) {
      const edit = op.customFields[key]
      const had = hasOwn(before.customFields, key)
      if (had && 'set' in edit && jsonEqual(edit.set, before.customFields[key])) continue
      if (had) fields[key] = { set: before.customFields[key] }
      else if ('set' in edit) fields[key] = { unset: true }
    }
    inv.customFields = fields
  }
  return finish(inv as TaskOp)
}

/**
 * Moves `undo` (an inverse, applying to some content S) past `later` (an op
 * committed on S, by anyone): `undo` becomes what applies after `later` and
 * keeps its effect; `later` becomes what applies after `undo` (to move the
 * next entry of an undo stack down past it). Both canonical.
 *
 *   apply(apply(S, later), result.undo) equals apply(apply(S, undo), result.later)
 *
 * `withLater` false: `result.later` is `later` as given (the caller does not need it moved).
 */
export function transformUndo(undo: TaskOp, later: TaskOp, withLater = true): { undo: TaskOp; later: TaskOp } {
  if (later.delete) return { undo: {}, later }
  if (undo.delete) return { undo, later: {} }
  const u: TaskOp = {}
  const l: TaskOp = { ...later }
  for (const field of ['title', 'description'] as const) {
    const a = undo[field]
    const b = later[field]
    if (a && b) {
      u[field] = transformText(a, b, 'left')
      if (withLater) l[field] = transformText(b, a, 'right')
    } else if (a) u[field] = a
  }
  // `later` moved past `undo` is only needed to go on down a stack: the last entry skips it.
  if (!withLater) return { undo: finishUndo(undo, later, u), later }
  return { undo: finishUndo(undo, later, u), later: finish(l) }
}

/** The rest of transformUndo's `undo`: value fields, tags and custom fields `later` did not touch. */
function finishUndo(undo: TaskOp, later: TaskOp, u: TaskOp): TaskOp {
  for (const key of VALUE_KEYS) if (undo[key] && !later[key]) (u as Record<string, unknown>)[key] = undo[key]
  if (undo.tags) {
    const touched = new Set([...(later.tags?.add ?? []), ...(later.tags?.remove ?? [])])
    u.tags = tagsEdit((undo.tags.add ?? []).filter((t) => !touched.has(t)), (undo.tags.remove ?? []).filter((t) => !touched.has(t)))
  }
  if (undo.customFields) {
    const theirs = later.customFields ?? {}
    const fields: Record<string, CustomFieldEdit> = {}
    for (const key of Object.keys(undo.customFields)) if (!hasOwn(theirs, key)) fields[key] = undo.customFields[key]
    u.customFields = fields
  }
  return finish(u)
}
