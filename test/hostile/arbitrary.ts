/**
 * fast-check arbitraries from the JSON Schemas of the OpenAPI document, and the
 * hostile mutations of a request built from them. Id fields are filled from the
 * test world by name (`projectId` → a project of the caller's organization), so
 * generated requests reach the handlers instead of stopping at a 404.
 */
import fc from 'fast-check'
import { randomUUID } from 'node:crypto'
import type { JsonSchema } from '../helpers/openapi.js'

/** Real ids for a field or parameter name, or undefined when the name says nothing. */
export type IdSource = (name: string) => string[] | undefined

const MAX_ITEMS = 4

function stringArb(s: JsonSchema, name: string, ids: IdSource): fc.Arbitrary<string> {
  const min = s.minLength ?? 0
  const max = Math.min(s.maxLength ?? 40, Math.max(min, 40))
  if (s.format === 'uuid') {
    const real = ids(name)
    return real && real.length > 0 ? fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...real) }, { weight: 1, arbitrary: fc.uuid() }) : fc.uuid()
  }
  if (s.format === 'date-time') return fc.date({ min: new Date('2000-01-01'), max: new Date('2100-01-01'), noInvalidDate: true }).map((d) => d.toISOString())
  if (s.format === 'email') return fc.emailAddress().filter((e) => e.length <= (s.maxLength ?? 254))
  if (typeof s.pattern === 'string') {
    const re = new RegExp(s.pattern, 'u')
    if (s.pattern.startsWith('^')) return fc.stringMatching(re).filter((x) => x.length >= min && x.length <= (s.maxLength ?? Infinity))
    return fc.string({ minLength: Math.max(min, 1), maxLength: max, unit: 'grapheme' }).filter((x) => re.test(x))
  }
  return fc.oneof(fc.string({ minLength: min, maxLength: max }), fc.string({ minLength: min, maxLength: max, unit: 'grapheme' }))
}

/** An arbitrary of values valid against `s` (as far as these keywords go). */
export function arbitraryOf(s: JsonSchema | undefined, ids: IdSource, name = ''): fc.Arbitrary<unknown> {
  if (!s || Object.keys(s).length === 0) return fc.jsonValue({ maxDepth: 2 })
  if (Array.isArray(s.anyOf)) return fc.oneof(...s.anyOf.map((b: JsonSchema) => arbitraryOf(b, ids, name)))
  if (Array.isArray(s.oneOf)) return fc.oneof(...s.oneOf.map((b: JsonSchema) => arbitraryOf(b, ids, name)))
  if (Array.isArray(s.enum)) return fc.constantFrom(...s.enum)
  if ('const' in s) return fc.constant(s.const)
  const type = Array.isArray(s.type) ? s.type[0] : s.type
  switch (type) {
    case 'string':
      return stringArb(s, name, ids)
    case 'integer':
      return fc.integer({ min: s.minimum ?? -1_000_000, max: s.maximum ?? 1_000_000 })
    case 'number':
      return fc.double({ min: s.minimum ?? -1e6, max: s.maximum ?? 1e6, noNaN: true, noDefaultInfinity: true })
    case 'boolean':
      return fc.boolean()
    case 'null':
      return fc.constant(null)
    case 'array':
      return fc.array(arbitraryOf(s.items, ids, name), { minLength: s.minItems ?? 0, maxLength: Math.max(s.minItems ?? 0, MAX_ITEMS) })
    case 'object': {
      const props: Record<string, JsonSchema> = s.properties ?? {}
      const required = new Set<string>(s.required ?? [])
      if (Object.keys(props).length === 0) {
        const values = s.additionalProperties && typeof s.additionalProperties === 'object' ? s.additionalProperties : s.patternProperties ? Object.values<JsonSchema>(s.patternProperties)[0] : undefined
        return fc.dictionary(fc.string({ minLength: 1, maxLength: 12 }), arbitraryOf(values, ids, name), { maxKeys: 3 })
      }
      const record = fc.record(
        Object.fromEntries(Object.entries(props).map(([k, v]) => [k, arbitraryOf(v, ids, k)])),
        { requiredKeys: Object.keys(props).filter((k) => required.has(k)) },
      )
      return s.minProperties ? record.filter((o) => Object.keys(o).length >= s.minProperties) : record
    }
    default:
      return fc.jsonValue({ maxDepth: 2 })
  }
}

/**
 * A JSON value with every required property of `s` and nothing random: the simplest
 * valid value. `full` also fills every optional property and puts one item in arrays
 * (more leaves for the mutations to reach).
 */
export function baselineOf(s: JsonSchema | undefined, ids: IdSource, name = '', full = false): unknown {
  if (!s || Object.keys(s).length === 0) return {}
  if ('default' in s) return s.default
  if (Array.isArray(s.anyOf)) return baselineOf(s.anyOf.find((b: JsonSchema) => b.type !== 'null') ?? s.anyOf[0], ids, name, full)
  if (Array.isArray(s.enum)) return s.enum[0]
  if ('const' in s) return s.const
  switch (Array.isArray(s.type) ? s.type[0] : s.type) {
    case 'string':
      if (s.format === 'uuid') return ids(name)?.[0] ?? randomUUID()
      if (s.format === 'date-time') return new Date().toISOString()
      if (s.format === 'email') return `${randomUUID().slice(0, 8)}@example.test`
      return 'x'.repeat(Math.max(s.minLength ?? 1, 8)).slice(0, s.maxLength ?? 8)
    case 'integer':
    case 'number':
      return Math.max(s.minimum ?? 1, 1)
    case 'boolean':
      return false
    case 'null':
      return null
    case 'array':
      return full ? [baselineOf(s.items, ids, name, full)] : []
    case 'object': {
      const out: Record<string, unknown> = {}
      const keys = full ? Object.keys(s.properties ?? {}) : (s.required ?? [])
      for (const k of keys) out[k] = baselineOf(s.properties?.[k], ids, k, full)
      if (s.minProperties && Object.keys(out).length < s.minProperties) {
        for (const [k, v] of Object.entries<JsonSchema>(s.properties ?? {})) if (!(k in out) && Object.keys(out).length < s.minProperties) out[k] = baselineOf(v, ids, k, full)
      }
      return out
    }
    default:
      return {}
  }
}

/** A request body as sent: JSON text or raw bytes, and its content type. */
export interface RawBody {
  why: string
  body: string | Buffer
  contentType?: string
}

/** Every path (as a key list) to a value in a JSON tree, the root included. */
function paths(value: unknown, at: string[] = []): string[][] {
  const out = [at]
  if (Array.isArray(value)) value.forEach((v, i) => out.push(...paths(v, [...at, String(i)])))
  else if (value !== null && typeof value === 'object') for (const [k, v] of Object.entries(value)) out.push(...paths(v, [...at, k]))
  return out
}

function setAt(root: unknown, path: string[], value: unknown): unknown {
  if (path.length === 0) return value
  const copy: any = structuredClone(root)
  let node = copy
  for (const k of path.slice(0, -1)) node = node[k]
  node[path[path.length - 1]] = value
  return copy
}

function deleteAt(root: unknown, path: string[]): unknown {
  const copy: any = structuredClone(root)
  let node = copy
  for (const k of path.slice(0, -1)) node = node[k]
  if (Array.isArray(node)) node.splice(Number(path[path.length - 1]), 1)
  else delete node[path[path.length - 1]]
  return copy
}

const WRONG_TYPES: unknown[] = [123, -1.5, true, null, [], {}, 'str', '']
const typeOf = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v)

/** Nested arrays `depth` deep, as JSON text (built as text: too deep for JSON.stringify to be kind). */
const deep = (depth: number) => '['.repeat(depth) + ']'.repeat(depth)

/**
 * The hostile variants of a valid body: every value of a wrong type, every field
 * missing, extra fields, a field too large for the body limit, deep nesting, NUL,
 * unpaired surrogates, bytes that are not UTF-8, bodies that are not objects,
 * prototype keys, and wrong content types. `limit` caps how many are returned
 * (spread over all kinds, deterministically from `seed`).
 */
export function hostileBodies(valid: unknown, seed: number, limit: number): RawBody[] {
  const out: RawBody[] = []
  const json = (why: string, v: unknown) => out.push({ why, body: JSON.stringify(v) })
  const leaves = paths(valid).filter((p) => p.length > 0)
  for (const p of leaves) {
    const current = leaves.length ? p.reduce<any>((n, k) => n?.[k], valid) : undefined
    const wrong = WRONG_TYPES.filter((w) => typeOf(w) !== typeOf(current))
    json(`${p.join('.')}: wrong type`, setAt(valid, p, wrong[(seed + p.length) % wrong.length]))
    json(`${p.join('.')}: missing`, deleteAt(valid, p))
    if (typeof current === 'number') {
      json(`${p.join('.')}: 1e20`, setAt(valid, p, 1e20))
      json(`${p.join('.')}: 2^53 + 1`, setAt(valid, p, 2 ** 53 + 2))
      json(`${p.join('.')}: 2^31`, setAt(valid, p, 2 ** 31))
    }
    if (typeof current === 'string') {
      json(`${p.join('.')}: NUL`, setAt(valid, p, `${current}\u0000`))
      json(`${p.join('.')}: lone surrogate`, setAt(valid, p, `${current}\ud800`))
      json(`${p.join('.')}: 100 KB`, setAt(valid, p, 'x'.repeat(100_000)))
      const marker = '\u0001INVALID\u0001'
      const text = JSON.stringify(setAt(valid, p, marker))
      const [before, after] = text.split(JSON.stringify(marker).slice(1, -1))
      out.push({ why: `${p.join('.')}: bytes that are not UTF-8`, body: Buffer.concat([Buffer.from(before), Buffer.from([0xed, 0xa0, 0x80, 0xff, 0xc0, 0x80]), Buffer.from(after)]) })
    }
  }
  const asObject = valid !== null && typeof valid === 'object' && !Array.isArray(valid) ? (valid as Record<string, unknown>) : {}
  json('an extra field', { ...asObject, extraField: 1 })
  out.push({ why: '__proto__ key', body: JSON.stringify(asObject).replace(/^\{/, '{"__proto__":{"polluted":1},') })
  out.push({ why: 'constructor.prototype key', body: JSON.stringify(asObject).replace(/^\{/, '{"constructor":{"prototype":{"polluted":1}},') })
  out.push({ why: 'a body over every limit (5 MiB)', body: JSON.stringify({ ...asObject, pad: 'x'.repeat(5 * 1024 * 1024) }) })
  out.push({ why: 'nesting 100,000 deep', body: `{"deep":${deep(100_000)}}` })
  out.push({ why: 'nesting 100,000 deep at the root', body: deep(100_000) })
  for (const v of [[], 'str', 42, null, true]) json(`a body that is ${typeOf(v)}`, v)
  out.push({ why: 'an empty JSON body', body: '' })
  out.push({ why: 'malformed JSON', body: '{"a":' })
  out.push({ why: 'a byte order mark', body: '\ufeff' + JSON.stringify(valid) })
  out.push({ why: 'text/plain', body: JSON.stringify(valid), contentType: 'text/plain' })
  out.push({ why: 'a form', body: 'a=1&b=2', contentType: 'application/x-www-form-urlencoded' })
  out.push({ why: 'multipart', body: '--x\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n--x--\r\n', contentType: 'multipart/form-data; boundary=x' })
  out.push({ why: 'UTF-16 declared', body: Buffer.from(JSON.stringify(valid), 'utf16le'), contentType: 'application/json; charset=utf-16' })
  out.push({ why: 'an unknown media type', body: JSON.stringify(valid), contentType: 'application/vnd.evil+json' })
  if (out.length <= limit) return out
  // Keep a deterministic spread: every kind once (the fixed tail), then leaves by seed.
  const tail = out.slice(-19)
  const head = out.slice(0, -19)
  const picked: RawBody[] = []
  for (let i = 0; picked.length < Math.max(0, limit - tail.length) && i < head.length; i++) picked.push(head[(seed * 7919 + i * 104729) % head.length])
  return [...new Set(picked), ...tail]
}

/** Hostile values for a path parameter. */
export const HOSTILE_PATH_VALUES = [
  'not-a-uuid',
  ' ',
  'A'.repeat(250),
  '%00',
  '%ED%A0%80',
  '..%2F..%2Fetc%2Fpasswd',
  '%F0%9F%98%80',
  '00000000-0000-0000-0000-000000000000',
  'FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF',
  '%25',
  "1'%20or%20'1'='1",
]

/** Hostile values for a query parameter (already encoded). */
export const HOSTILE_QUERY_VALUES = ['', '-1', '0', '1e309', '99999999999999999999', 'NaN', 'true', '%00', '%ED%A0%80', '%FF', 'A'.repeat(5000), '[]', '{}', "'%20or%201=1--"]
