/**
 * Text editing helpers for inputs bound to a task's title or description:
 * the op of one edit (placed where the caret says, not only where a diff
 * guesses), and a caret moved through someone else's op. Pure; positions of
 * ops are in code points, positions in the DOM in UTF-16 units.
 */
import type { TextOp } from '../domain/index.js'

/** Code points in the first `utf16` units of `s`. */
export function toCodePoints(s: string, utf16: number): number {
  let n = 0
  for (let i = 0; i < utf16 && i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) i++
    n++
  }
  return n
}

/** UTF-16 offset of code point `cp` in `s`. */
export function toUtf16(s: string, cp: number): number {
  let i = 0
  for (let n = 0; n < cp && i < s.length; n++) {
    const c = s.charCodeAt(i)
    i += c >= 0xd800 && c <= 0xdbff && i + 1 < s.length ? 2 : 1
  }
  return i
}

function op(s: string, start: number, removed: string, inserted: string): TextOp {
  const out: TextOp = []
  const skip = toCodePoints(s, start)
  if (skip > 0) out.push(skip)
  const d = toCodePoints(removed, removed.length)
  if (d > 0) out.push({ d })
  if (inserted) out.push(inserted)
  return out
}

/**
 * The text op turning `before` into `after`, one span replaced. `caret` (the
 * UTF-16 selection end after the edit) decides where a typed or deleted run
 * was when the text alone is ambiguous ("aa" → "aaa": which a?).
 */
export function editOp(before: string, after: string, caret?: number): TextOp {
  if (before === after) return []
  const grow = after.length - before.length
  if (caret !== undefined) {
    // Typed (or pasted) text ending at the caret.
    const start = caret - grow
    if (grow > 0 && start >= 0 && after.slice(0, start) === before.slice(0, start) && after.slice(caret) === before.slice(start) && isBoundary(after, start) && isBoundary(after, caret)) {
      return op(before, start, '', after.slice(start, caret))
    }
    // Deleted text starting at the caret (backspace or delete).
    if (grow < 0 && caret <= after.length && after.slice(0, caret) === before.slice(0, caret) && after.slice(caret) === before.slice(caret - grow) && isBoundary(before, caret) && isBoundary(before, caret - grow)) {
      return op(before, caret, before.slice(caret, caret - grow), '')
    }
  }
  let start = 0
  const max = Math.min(before.length, after.length)
  while (start < max && before.charCodeAt(start) === after.charCodeAt(start)) start++
  if (!isBoundary(before, start)) start--
  let end = 0
  while (end < max - start && before.charCodeAt(before.length - 1 - end) === after.charCodeAt(after.length - 1 - end)) end++
  if (!isBoundary(before, before.length - end)) end--
  return op(before, start, before.slice(start, before.length - end), after.slice(start, after.length - end))
}

/** False inside a surrogate pair. */
function isBoundary(s: string, i: number): boolean {
  if (i <= 0 || i >= s.length) return true
  const c = s.charCodeAt(i)
  return !(c >= 0xdc00 && c <= 0xdfff)
}

/**
 * Where a caret at code point `pos` is after `op` (someone else's edit):
 * text inserted or deleted before it moves it; text inserted exactly at it
 * lands after it, so the caret stays where its owner put it.
 */
export function transformCaret(pos: number, textOp: TextOp): number {
  let at = 0
  let out = pos
  for (const c of textOp) {
    if (at > pos) break
    if (typeof c === 'number') at += c
    else if (typeof c === 'string') {
      if (at < pos) out += toCodePoints(c, c.length)
    } else {
      out -= Math.max(0, Math.min(c.d, pos - at))
      at += c.d
    }
  }
  return out
}
