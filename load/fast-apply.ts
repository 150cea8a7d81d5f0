/**
 * The raw generator's apply (load/worker.ts): every socket applies every op it
 * receives to its own view, ~10 applies per committed op, and taskType.apply
 * reads (validates and copies) each op before applying it, most of its cost.
 * The ops steady sends have one shape, a title edit of one component after an
 * optional skip (an insert of printable ASCII, or a delete) and one custom field
 * set to a number: those are applied here directly, with every check of
 * taskType.apply that can refuse them (text bounds, the title limit, the custom
 * field count). Anything else, and anything that check would refuse, goes to
 * taskType.apply itself, so the result (or the error) is always taskType.apply's:
 * test/load/fast-apply.test.ts compares the two over random contents and ops,
 * near misses of the shape included.
 */
import { taskType } from '../src/domain/index.js'
import type { JsonValue, TaskContent, TaskOp } from '../src/domain/types.js'

const isObject = (x: unknown): x is Record<string, unknown> => {
  if (typeof x !== 'object' || x === null || Array.isArray(x)) return false
  const proto = Object.getPrototypeOf(x)
  return proto === Object.prototype || proto === null
}

/** Printable ASCII (U+0020..U+007E): a string taskType accepts, one code point per UTF-16 unit. */
function isPrintableAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c < 0x20 || c > 0x7e) return false
  }
  return true
}

/** No surrogate: code point positions are UTF-16 indexes. */
function noSurrogate(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c >= 0xd800 && c <= 0xdfff) return false
  }
  return true
}

const isSkip = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x > 0

/** `{d: n}` with n a positive safe integer, or undefined. */
function deleteCount(x: unknown): number | undefined {
  if (!isObject(x)) return undefined
  const keys = Object.keys(x)
  if (keys.length !== 1 || keys[0] !== 'd') return undefined
  return isSkip(x.d) ? x.d : undefined
}

/** The new title, or undefined for taskType.apply to decide. */
function title(text: string, op: unknown): string | undefined {
  if (!Array.isArray(op) || op.length === 0 || op.length > 2) return undefined
  let skip = 0
  let edit: unknown = op[0]
  if (op.length === 2) {
    if (!isSkip(op[0])) return undefined
    skip = op[0]
    edit = op[1]
  }
  if (!noSurrogate(text)) return undefined
  if (typeof edit === 'string') {
    if (edit.length === 0 || !isPrintableAscii(edit)) return undefined
    if (skip > text.length) return undefined
    const after = text.length + edit.length
    if (after > taskType.limits.titleMax) return undefined
    return skip === 0 ? edit + text : text.slice(0, skip) + edit + text.slice(skip)
  }
  const d = deleteCount(edit)
  if (d === undefined || skip + d > text.length) return undefined
  return skip === 0 ? text.slice(d) : text.slice(0, skip) + text.slice(skip + d)
}

/** The new custom fields, or undefined for taskType.apply to decide. */
function customFields(fields: Record<string, JsonValue>, op: unknown): Record<string, JsonValue> | undefined {
  if (!isObject(op)) return undefined
  const keys = Object.keys(op)
  if (keys.length !== 1) return undefined
  const key = keys[0]
  if (key.length === 0 || key.length > 64 || key === '__proto__' || !isPrintableAscii(key)) return undefined
  const edit = op[key]
  if (!isObject(edit)) return undefined
  const editKeys = Object.keys(edit)
  if (editKeys.length !== 1 || editKeys[0] !== 'set') return undefined
  const value = edit.set
  if (typeof value !== 'number' || !Number.isFinite(value)) return undefined
  const next: Record<string, JsonValue> = { ...fields }
  const added = !Object.hasOwn(next, key)
  next[key] = value + 0 // as taskType reads it: -0 is 0
  if (added) {
    const n = Object.keys(next).length
    if (n > taskType.limits.customFieldsMax && n > Object.keys(fields).length) return undefined
  }
  return next
}

/** `op` applied to `s` without reading it first, or undefined when it is not of the known shape. */
export function applyKnown(s: TaskContent, op: unknown): TaskContent | undefined {
  if (
    !isObject(s) ||
    typeof s.title !== 'string' ||
    typeof s.description !== 'string' ||
    typeof s.status !== 'string' ||
    typeof s.priority !== 'number' ||
    !Array.isArray(s.tags) ||
    !isObject(s.customFields) ||
    s.deleted !== false
  )
    return undefined
  if (!isObject(op)) return undefined
  const keys = Object.keys(op)
  if (keys.length !== 2 || !Object.hasOwn(op, 'title') || !Object.hasOwn(op, 'customFields')) return undefined
  const t = title(s.title, op.title)
  if (t === undefined) return undefined
  const cf = customFields(s.customFields, op.customFields)
  if (cf === undefined) return undefined
  return {
    title: t,
    description: s.description,
    status: s.status,
    priority: s.priority,
    tags: s.tags,
    assigneeId: s.assigneeId,
    dueAt: s.dueAt,
    projectId: s.projectId,
    customFields: cf,
    deleted: false,
  }
}

/** What taskType.apply(s, op) returns (or throws), cheaper for the ops steady sends. */
export function applyOp(s: TaskContent, op: unknown): TaskContent {
  return applyKnown(s, op) ?? taskType.apply(s, op as TaskOp)
}
