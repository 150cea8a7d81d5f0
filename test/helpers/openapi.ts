/**
 * The REST API as the OpenAPI document at /docs/json describes it, for suites
 * that generate their probes from it: the operations, their parameters and
 * body schemas, and a check that an answer is documented (its status listed,
 * its body valid against that status's schema). A route added tomorrow is in
 * the document, so it is probed the day it is added.
 */
import { Compile } from 'typebox/compile'
import type { TSchema } from 'typebox'

export type JsonSchema = Record<string, any>

export interface Parameter {
  name: string
  in: 'path' | 'query' | 'header'
  required: boolean
  schema: JsonSchema
}

export interface Operation {
  /** `GET /api/tasks/{id}` */
  key: string
  method: string
  /** OpenAPI form: `/api/tasks/{id}`. */
  path: string
  parameters: Parameter[]
  /** The JSON body schema (converted to JSON Schema), if the operation documents one. */
  body?: JsonSchema
  /** Documented statuses → JSON Schema of the answer (null: no body documented). */
  responses: Record<string, JsonSchema | null>
  /** True when the operation declares `security` (needs a bearer token). */
  secured: boolean
}

/** OpenAPI 3.0 → JSON Schema: `nullable: true` becomes a union with null; extensions are dropped. */
export function toJsonSchema(s: unknown): any {
  if (Array.isArray(s)) return s.map(toJsonSchema)
  if (s === null || typeof s !== 'object') return s
  const out: JsonSchema = {}
  for (const [k, v] of Object.entries(s)) {
    if (k === 'nullable' || k === 'example' || k === 'examples' || k.startsWith('x-')) continue
    if (k === 'properties' || k === 'patternProperties') out[k] = Object.fromEntries(Object.entries(v as object).map(([p, ps]) => [p, toJsonSchema(ps)]))
    else out[k] = toJsonSchema(v)
  }
  if ((s as JsonSchema).nullable === true) {
    if (Array.isArray(out.enum)) return { anyOf: [out, { type: 'null' }] }
    return { anyOf: [out, { type: 'null' }] }
  }
  return out
}

/** Every operation of the document, in document order. */
export async function loadOperations(url: string): Promise<Operation[]> {
  const res = await fetch(`${url}/docs/json`)
  if (res.status !== 200) throw new Error(`/docs/json answered ${res.status}`)
  return operationsOf(await res.json())
}

export function operationsOf(doc: any): Operation[] {
  const ops: Operation[] = []
  for (const [path, item] of Object.entries<any>(doc.paths ?? {})) {
    for (const [method, op] of Object.entries<any>(item)) {
      if (!['get', 'post', 'put', 'patch', 'delete'].includes(method)) continue
      const responses: Record<string, JsonSchema | null> = {}
      for (const [status, r] of Object.entries<any>(op.responses ?? {})) {
        const schema = r?.content?.['application/json']?.schema
        responses[status] = schema ? toJsonSchema(schema) : null
      }
      const body = op.requestBody?.content?.['application/json']?.schema
      ops.push({
        key: `${method.toUpperCase()} ${path}`,
        method: method.toUpperCase(),
        path,
        parameters: (op.parameters ?? []).map((p: any) => ({ name: p.name, in: p.in, required: !!p.required, schema: toJsonSchema(p.schema ?? {}) })),
        body: body ? toJsonSchema(body) : undefined,
        responses,
        secured: Array.isArray(op.security) && op.security.length > 0,
      })
    }
  }
  return ops
}

const compiled = new WeakMap<object, ReturnType<typeof Compile>>()
function compile(schema: JsonSchema): ReturnType<typeof Compile> {
  let c = compiled.get(schema)
  if (!c) compiled.set(schema, (c = Compile(schema as TSchema)))
  return c
}

/** The errors of `value` against a JSON Schema (empty when valid). */
export function schemaErrors(schema: JsonSchema, value: unknown): string[] {
  const c = compile(schema)
  if (c.Check(value)) return []
  return [...c.Errors(value)].slice(0, 5).map((e) => `${e.instancePath || '/'} ${e.message}`)
}

export interface Answer {
  status: number
  /** Parsed JSON, or the raw text, or null when empty. */
  body: unknown
  text: string
}

/**
 * Why an answer is not what the document promises, or null when it is: the
 * status must be documented for the operation, a JSON body must validate
 * against that status's schema, an error must be `{error: {code, message}}`,
 * and 204 carries nothing.
 */
export function undocumented(op: Operation, answer: Answer): string | null {
  const status = String(answer.status)
  if (!(status in op.responses)) return `${op.key}: status ${status} is not documented (documented: ${Object.keys(op.responses).join(', ')})`
  if (answer.status === 204) return answer.text === '' ? null : `${op.key}: 204 with a body`
  const schema = op.responses[status]
  if (!schema) return `${op.key}: ${status} has no documented schema`
  const errors = schemaErrors(schema, answer.body)
  if (errors.length > 0) return `${op.key}: ${status} body does not match its documented schema: ${errors.join('; ')} — ${answer.text.slice(0, 200)}`
  if (answer.status >= 400) {
    const e = (answer.body as { error?: { code?: unknown; message?: unknown } })?.error
    if (typeof e?.code !== 'string' || typeof e?.message !== 'string') return `${op.key}: ${status} is not in the contract's error shape`
  }
  return null
}

/** `/api/tasks/{id}/comments` → `/api/tasks/x/comments` with the given values (encoded). */
export function fillPath(path: string, values: Record<string, string>): string {
  return path.replace(/\{([^}]+)\}/g, (_, name: string) => encodeURIComponent(values[name] ?? ''))
}

/** The names of the path parameters of an OpenAPI path, in order. */
export function pathParams(path: string): string[] {
  return [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1])
}

export interface SendOptions {
  token?: string
  /** An object is sent as JSON; a string or Buffer as is. */
  body?: unknown
  headers?: Record<string, string>
  /** A request not answered within this is a hang: send rejects. */
  timeoutMs?: number
}

/** One request; rejects with `hang` when no answer comes within timeoutMs (10 s). */
export async function send(url: string, method: string, path: string, opts: SendOptions = {}): Promise<Answer> {
  const headers: Record<string, string> = { ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}) }
  let body: string | Uint8Array | undefined
  if (opts.body !== undefined) {
    body = typeof opts.body === 'string' || Buffer.isBuffer(opts.body) ? (opts.body as string | Uint8Array) : JSON.stringify(opts.body)
    headers['content-type'] = 'application/json'
  }
  Object.assign(headers, opts.headers)
  const timeoutMs = opts.timeoutMs ?? 10_000
  let res: Response
  try {
    res = await fetch(url + path, { method, headers, body: body as BodyInit | undefined, signal: AbortSignal.timeout(timeoutMs) })
  } catch (err) {
    if ((err as Error).name === 'TimeoutError') throw new Error(`hang: ${method} ${path} not answered within ${timeoutMs} ms`)
    throw err
  }
  const text = await res.text()
  let parsed: unknown = null
  if (text) {
    try {
      parsed = JSON.parse(text)
    } catch {
      parsed = text
    }
  }
  return { status: res.status, body: parsed, text }
}
