/**
 * Text a request may carry. JSON is UTF-8 (RFC 8259): a body with bytes that are
 * not UTF-8 is refused whole, before parsing, instead of having them replaced
 * by U+FFFD. Strings must be Unicode too: an unpaired surrogate escape (or a
 * U+0000, which PostgreSQL cannot store) in any field is refused by the
 * request validator, naming the field, except in task content, which the op
 * type checks itself and answers 422 invalid_op, exactly as on the socket.
 */
import { isUtf8 } from 'node:buffer'
import type { TSchema } from 'typebox'
import { TaskSyncError } from '../protocol/errors.js'
import { textProblem } from '../domain/values.js'

/** Marks a request schema whose strings the op type validates (answers 422 invalid_op, per mutation in a push). */
export const OP_CONTENT = 'x-op-content'

/** `schema`, marked as task content: the request validator leaves its text to the op type. */
export function opContent<T extends TSchema>(schema: T): T {
  return { ...schema, [OP_CONTENT]: true }
}

const problemOf = textProblem

type Schema = Record<string, unknown> | undefined

/** The schema of `key` in an object schema (properties, then a record's value schema), if known. */
function childOf(schema: Schema, key: string): Schema {
  if (!schema) return undefined
  const props = schema.properties as Record<string, Schema> | undefined
  if (props && Object.prototype.hasOwnProperty.call(props, key)) return props[key]
  const patterns = schema.patternProperties as Record<string, Schema> | undefined
  if (patterns) return Object.values(patterns)[0]
  return typeof schema.additionalProperties === 'object' ? (schema.additionalProperties as Schema) : undefined
}

const isOpContent = (schema: Schema): boolean =>
  !!schema && (schema[OP_CONTENT] === true || (Array.isArray(schema.anyOf) && schema.anyOf.some((s) => (s as Schema)?.[OP_CONTENT] === true)))

export interface TextIssue {
  path: string
  message: string
}

/** The first string or key in `value` that is not Unicode text, outside op-content subtrees; null when none. */
export function findBadText(schema: Schema, value: unknown, path = ''): TextIssue | null {
  if (isOpContent(schema)) return null
  if (typeof value === 'string') {
    const message = problemOf(value)
    return message ? { path: path || '/', message } : null
  }
  if (Array.isArray(value)) {
    const items = schema?.items as Schema
    for (let i = 0; i < value.length; i++) {
      const issue = findBadText(items, value[i], `${path}/${i}`)
      if (issue) return issue
    }
    return null
  }
  if (value !== null && typeof value === 'object') {
    for (const [key, v] of Object.entries(value)) {
      const at = `${path}/${key}`
      const message = problemOf(key)
      if (message) return { path: at, message: `(a key) ${message}` }
      const issue = findBadText(childOf(schema, key), v, at)
      if (issue) return issue
    }
  }
  return null
}

/** Byte offset of the first sequence in `buf` that is not UTF-8. */
function firstInvalidByte(buf: Buffer): number {
  for (let i = 0; i < buf.length; ) {
    const b = buf[i]
    const [n, min] = b < 0x80 ? [0, 0] : b >= 0xc2 && b < 0xe0 ? [1, 0x80] : b >= 0xe0 && b < 0xf0 ? [2, 0x800] : b >= 0xf0 && b < 0xf5 ? [3, 0x10000] : [-1, 0]
    if (n < 0) return i
    let cp = n === 0 ? b : b & (0x3f >> n)
    for (let k = 1; k <= n; k++) {
      const c = buf[i + k]
      if (c === undefined || (c & 0xc0) !== 0x80) return i
      cp = (cp << 6) | (c & 0x3f)
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i
    i += n + 1
  }
  return -1
}

/** The string fields (JSON pointers) of a lossily decoded body where U+FFFD replaced bytes. */
function replacedFields(value: unknown, path = ''): string[] {
  if (typeof value === 'string') return value.includes('\uFFFD') ? [path || '/'] : []
  if (value === null || typeof value !== 'object') return []
  return Object.entries(value).flatMap(([k, v]) => (k.includes('\uFFFD') ? [`${path}/${k}`] : replacedFields(v, `${path}/${k}`)))
}

/**
 * The body as text, or a `bad_request` naming the field whose bytes are not UTF-8
 * (found by decoding lossily when the body holds no genuine U+FFFD; else by offset).
 */
export function utf8Body(raw: Buffer): string {
  if (isUtf8(raw)) return raw.toString('utf8')
  const offset = firstInvalidByte(raw)
  let fields: string[] = []
  if (!raw.includes(Buffer.from('\uFFFD'))) {
    try {
      fields = replacedFields(JSON.parse(raw.toString('utf8')))
    } catch {
      // Not JSON either: the offset is all there is to say.
    }
  }
  const details = fields.length > 0 ? fields.map((path) => ({ in: 'body', path, message: 'is not valid UTF-8' })) : [{ in: 'body', path: '/', message: `byte ${offset} is not valid UTF-8` }]
  throw new TaskSyncError('bad_request', `the body is not valid UTF-8 (byte ${offset}${fields.length ? `, in ${fields[0]}` : ''})`, details)
}
