/**
 * Validators and canonical forms of the single values an op or initial
 * content carries. Each takes a `path` for the error it throws.
 */
import { fail } from './errors.js'
import { STATUSES, type JsonValue, type Status, type TaskLimits } from './types.js'

export const hasOwn = (o: object, k: string): boolean => Object.prototype.hasOwnProperty.call(o, k)

/** A JSON object: not null, not an array, not a class instance. */
export function isPlainObject(x: unknown): x is Record<string, unknown> {
  if (typeof x !== 'object' || x === null || Array.isArray(x)) return false
  const proto = Object.getPrototypeOf(x)
  return proto === Object.prototype || proto === null
}

/** Own keys, or an error when `x` is not a plain object. */
export function objectKeys(x: unknown, path: string): string[] {
  if (!isPlainObject(x)) fail(path, `must be an object, got ${describe(x)}`)
  return Object.keys(x)
}

export function describe(x: unknown): string {
  if (x === null) return 'null'
  if (Array.isArray(x)) return 'an array'
  if (typeof x === 'string') return `string ${JSON.stringify(x.length > 40 ? x.slice(0, 40) + '…' : x)}`
  if (typeof x === 'number' || typeof x === 'boolean') return `${typeof x} ${x}`
  return typeof x === 'object' ? 'an object' : typeof x
}

/** Rejects keys outside `allowed` (also catches `__proto__` smuggled in by JSON.parse). */
export function onlyKeys(x: unknown, allowed: readonly string[], path: string): Record<string, unknown> {
  for (const k of objectKeys(x, path)) {
    if (!allowed.includes(k)) fail(path, `unknown key ${JSON.stringify(k)} (allowed: ${allowed.join(', ')})`)
  }
  return x as Record<string, unknown>
}

// PostgreSQL jsonb and text refuse U+0000, and an unpaired surrogate would make
// code point positions differ between peers once another op completes the pair.
const BAD_CHAR = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

/** What makes `s` unfit to store or count (U+0000, an unpaired surrogate), or null. */
export function textProblem(s: string): string | null {
  const bad = BAD_CHAR.exec(s)
  if (!bad) return null
  return bad[0] === '\u0000' ? 'contains U+0000' : 'contains an unpaired surrogate (not valid Unicode)'
}

/** A string that can be stored and counted in code points everywhere. */
export function checkString(x: unknown, path: string): string {
  if (typeof x !== 'string') fail(path, `must be a string, got ${describe(x)}`)
  const problem = textProblem(x)
  if (problem) fail(path, problem)
  return x
}

/** Length in Unicode code points (a surrogate pair counts once). */
export function codePoints(s: string): number {
  let n = s.length
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c >= 0xd800 && c <= 0xdbff) {
      n--
      i++
    }
  }
  return n
}

/** Byte length of `s` in UTF-8, without allocating. */
export function utf8Length(s: string): number {
  let n = 0
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c < 0x80) n += 1
    else if (c < 0x800) n += 2
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      n += 4
      i++
    } else n += 3
  }
  return n
}

export function checkStatus(x: unknown, path: string): Status {
  if (typeof x !== 'string' || !(STATUSES as readonly string[]).includes(x)) {
    fail(path, `unknown status ${describe(x)} (one of ${STATUSES.join(', ')})`)
  }
  return x as Status
}

export function checkPriority(x: unknown, path: string): number {
  if (typeof x !== 'number' || !Number.isInteger(x) || x < 0 || x > 4) {
    fail(path, `priority must be an integer 0..4, got ${describe(x)}`)
  }
  return x + 0 // -0 becomes 0
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/** A UUID or null; UUIDs are kept lower-case, as PostgreSQL prints them. */
export function checkUuidOrNull(x: unknown, path: string): string | null {
  if (x === null) return null
  if (typeof x !== 'string' || !UUID.test(x)) fail(path, `must be a UUID or null, got ${describe(x)}`)
  return x.toLowerCase()
}

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:[Zz]|([+-])(\d{2}):(\d{2}))$/

/** An RFC 3339 date-time with any offset, as the UTC instant with milliseconds; or null. */
export function checkDueAt(x: unknown, path: string): string | null {
  if (x === null) return null
  const m = typeof x === 'string' ? RFC3339.exec(x) : null
  if (!m) fail(path, `must be an RFC 3339 date-time (e.g. 2026-12-01T09:00:00+02:00) or null, got ${describe(x)}`)
  const [y, mo, d, h, mi, s] = m.slice(1, 7).map(Number)
  const ms = Number(((m[7] ?? '') + '000').slice(0, 3)) // sub-millisecond digits are truncated
  const offset = m[8] ? (m[8] === '-' ? -1 : 1) * (Number(m[9]) * 60 + Number(m[10])) : 0
  const monthDays = [31, y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
  if (mo < 1 || mo > 12 || d < 1 || d > monthDays[mo - 1]) fail(path, `no such date in ${describe(x)}`)
  if (h > 23 || mi > 59 || s > 59) fail(path, `no such time in ${describe(x)} (leap seconds are not supported)`)
  if (m[8] && (Number(m[9]) > 23 || Number(m[10]) > 59)) fail(path, `bad UTC offset in ${describe(x)}`)
  const t = new Date(0)
  t.setUTCFullYear(y, mo - 1, d) // setUTCFullYear, unlike Date.UTC, keeps years 0..99 as they are
  t.setUTCHours(h, mi, s, ms)
  const utc = new Date(t.getTime() - offset * 60_000)
  if (utc.getUTCFullYear() < 0 || utc.getUTCFullYear() > 9999) fail(path, `${describe(x)} is outside years 0000..9999 in UTC`)
  return utc.toISOString()
}

/** A tag: a non-empty string of at most `tagLengthMax` code points. */
export function checkTag(x: unknown, path: string, limits: TaskLimits): string {
  const tag = checkString(x, path)
  if (tag.length === 0) fail(path, 'a tag must not be empty')
  const n = codePoints(tag)
  if (n > limits.tagLengthMax) fail(path, `tag is ${n} code points, over the limit of ${limits.tagLengthMax}`)
  return tag
}

/** A list of tags, sorted by UTF-16 code units (the default sort) and without duplicates. */
export function checkTagList(x: unknown, path: string, limits: TaskLimits): string[] {
  if (!Array.isArray(x)) fail(path, `must be an array of tags, got ${describe(x)}`)
  return sortedSet(x.map((t, i) => checkTag(t, `${path}[${i}]`, limits)))
}

export function sortedSet(xs: Iterable<string>): string[] {
  return [...new Set(xs)].sort()
}

/** A custom field key: 1..64 code points, and never `__proto__`. */
export function checkFieldKey(k: string, path: string): string {
  checkString(k, path)
  if (k.length === 0 || codePoints(k) > 64) fail(path, 'a custom field key must be 1..64 code points')
  if (k === '__proto__') fail(path, 'the key "__proto__" is not allowed')
  return k
}

/** A JSON value within the depth and serialized size limits, returned as a fresh copy. */
export function checkCustomValue(x: unknown, path: string, limits: TaskLimits): JsonValue {
  const copy = cloneJson(x, path, 0, limits.customFieldDepthMax)
  if (limits.customFieldValueBytesMax === Infinity) return copy
  const bytes = utf8Length(JSON.stringify(copy))
  if (bytes > limits.customFieldValueBytesMax) {
    fail(path, `value is ${bytes} bytes serialized, over the limit of ${limits.customFieldValueBytesMax}`)
  }
  return copy
}

function cloneJson(x: unknown, path: string, depth: number, maxDepth: number): JsonValue {
  if (x === null || typeof x === 'boolean') return x
  if (typeof x === 'number') {
    if (!Number.isFinite(x)) fail(path, `numbers must be finite, got ${x}`)
    return x + 0
  }
  if (typeof x === 'string') return checkString(x, path)
  if (depth >= maxDepth && typeof x === 'object') fail(path, `nested deeper than ${maxDepth} levels`)
  if (Array.isArray(x)) return x.map((v, i) => cloneJson(v, `${path}[${i}]`, depth + 1, maxDepth))
  if (isPlainObject(x)) {
    const out: Record<string, JsonValue> = {}
    for (const k of Object.keys(x)) {
      if (k === '__proto__') fail(path, 'the key "__proto__" is not allowed')
      out[checkString(k, `${path}.${k}`)] = cloneJson(x[k], `${path}.${k}`, depth + 1, maxDepth)
    }
    return out
  }
  fail(path, `not a JSON value: ${describe(x)}`)
}

/** Structural equality of JSON values (key order ignored). */
export function jsonEqual(a: JsonValue, b: JsonValue): boolean {
  if (a === b) return true
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((v, i) => jsonEqual(v, b[i]))
  }
  const ka = Object.keys(a)
  return ka.length === Object.keys(b).length && ka.every((k) => hasOwn(b, k) && jsonEqual(a[k], b[k]))
}
