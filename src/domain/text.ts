/**
 * Text fields: ot-text-unicode ops (positions in code points), validated and
 * kept in a canonical form so that equal edits are equal ops.
 */
import { type as otText } from 'ot-text-unicode'
import { fail } from './errors.js'
import { checkString, codePoints, describe, isPlainObject } from './values.js'
import type { TextOp, TextOpComponent } from './types.js'

/**
 * Validates the components of a text op and returns its canonical form: fresh
 * components, adjacent ones of a kind merged, no trailing skip. Skips and
 * deletes are positive integers, inserts non-empty strings.
 */
export function readTextOp(x: unknown, path: string): TextOp {
  if (!Array.isArray(x)) fail(path, `must be a text op (array of skip/insert/{d}), got ${describe(x)}`)
  const out: TextOp = []
  for (let i = 0; i < x.length; i++) {
    const c: unknown = x[i]
    const at = `${path}[${i}]`
    if (typeof c === 'number') {
      if (!Number.isSafeInteger(c) || c <= 0) fail(at, `a skip must be a positive integer, got ${describe(c)}`)
      push(out, c)
    } else if (typeof c === 'string') {
      if (c.length === 0) fail(at, 'an insert must not be empty')
      push(out, checkString(c, at))
    } else if (isPlainObject(c) && Object.keys(c).length === 1 && Object.hasOwn(c, 'd')) {
      const d = c.d
      if (typeof d !== 'number' || !Number.isSafeInteger(d) || d <= 0) {
        fail(at, `a delete must be {d: positive integer}, got {d: ${describe(d)}}`)
      }
      push(out, { d })
    } else fail(at, `not a text op component (number, string or {d: n}): ${describe(c)}`)
  }
  if (typeof out[out.length - 1] === 'number') out.pop()
  return out
}

function push(op: TextOp, c: TextOpComponent): void {
  const last = op[op.length - 1]
  if (typeof c === 'number' && typeof last === 'number') op[op.length - 1] = last + c
  else if (typeof c === 'string' && typeof last === 'string') op[op.length - 1] = last + c
  else if (typeof c === 'object' && typeof last === 'object') op[op.length - 1] = { d: last.d + c.d }
  else op.push(c)
}

/**
 * Applies a canonical text op, checking it stays inside `text` and that the
 * result is at most `max` code points (unless it does not grow: limits lowered
 * later must not block edits that shorten an over-long text).
 */
export function applyText(text: string, op: TextOp, max: number, path: string): string {
  let consumed = 0
  let inserted = 0
  for (const c of op) {
    if (typeof c === 'number') consumed += c
    else if (typeof c === 'string') inserted += codePoints(c)
    else consumed += c.d
  }
  const before = codePoints(text)
  if (consumed > before) fail(path, `text op reaches position ${consumed}, past the end of the text (${before} code points)`)
  let deleted = 0
  for (const c of op) if (typeof c === 'object') deleted += c.d
  const after = before - deleted + inserted
  if (after > max && after > before) fail(path, `text would be ${after} code points, over the limit of ${max}`)
  if (op.length === 0) return text
  // Without surrogate pairs a code point position is a UTF-16 index: slices do what
  // otText.apply does, without its rope builder (most titles; the op is checked above).
  if (before !== text.length) return otText.apply(text, op as never)
  let out = ''
  let pos = 0
  for (const c of op) {
    if (typeof c === 'number') {
      out += text.slice(pos, pos + c)
      pos += c
    } else if (typeof c === 'string') out += c
    else pos += c.d
  }
  return pos === 0 ? out + text : out + text.slice(pos)
}

/** Transforms canonical text op `op` against `other` (ot-text-unicode semantics). */
export function transformText(op: TextOp, other: TextOp, side: 'left' | 'right'): TextOp {
  return otText.transform(op as never, other as never, side) as TextOp
}

/** The text op equivalent to `a` then `b`. */
export function composeText(a: TextOp, b: TextOp): TextOp {
  return otText.compose(a as never, b as never) as TextOp
}

/** The smallest single-span edit turning `before` into `after`: common prefix and suffix are kept. */
export function textDiff(before: string, after: string): TextOp {
  if (before === after) return []
  let start = 0
  const max = Math.min(before.length, after.length)
  while (start < max && before.charCodeAt(start) === after.charCodeAt(start)) start++
  if (start > 0 && isHigh(before.charCodeAt(start - 1))) start-- // never split a surrogate pair
  let end = 0
  const maxEnd = max - start
  while (end < maxEnd && before.charCodeAt(before.length - 1 - end) === after.charCodeAt(after.length - 1 - end)) end++
  if (end > 0 && isLow(before.charCodeAt(before.length - end))) end--
  const skip = codePoints(before.slice(0, start))
  const removed = codePoints(before.slice(start, before.length - end))
  const inserted = after.slice(start, after.length - end)
  const op: TextOp = []
  if (skip > 0) op.push(skip)
  if (removed > 0) op.push({ d: removed })
  if (inserted.length > 0) op.push(inserted)
  return op
}

const isHigh = (c: number) => c >= 0xd800 && c <= 0xdbff
const isLow = (c: number) => c >= 0xdc00 && c <= 0xdfff

/**
 * The text op replacing `deleteCount` code points at code point `pos` with
 * `insert` (what insert, delete and replace helpers build). Throws
 * InvalidOpError when the numbers are not non-negative integers.
 */
export function textEdit(pos: number, deleteCount: number, insert = ''): TextOp {
  for (const [name, n] of [['position', pos], ['length', deleteCount]] as const) {
    if (!Number.isSafeInteger(n) || n < 0) fail(name, `must be a non-negative integer (code points), got ${describe(n)}`)
  }
  checkString(insert, 'text')
  const op: TextOp = []
  if (pos > 0) op.push(pos)
  if (deleteCount > 0) op.push({ d: deleteCount })
  if (insert.length > 0) op.push(insert)
  return op
}
