/**
 * Turns one text frame into a validated client message. The schemas are compiled
 * once; a frame that is not a JSON object, has an unknown `type`, or missing or
 * ill-typed fields is answered `bad_request` with a message naming the problem.
 */
import { Compile } from 'typebox/compile'
import { ClientMessageSchemas, type ClientMessage, type ClientMessageType } from '../protocol/messages.js'

type Validator = ReturnType<typeof Compile>

const validators = new Map<string, Validator>(
  Object.entries(ClientMessageSchemas).map(([type, schema]) => [type, Compile(schema)]),
)

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

export type Parsed = { ok: true; msg: ClientMessage } | { ok: false; message: string; type?: string }

/** Parses and validates one text frame. */
export function parseClientMessage(text: string): Parsed {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return { ok: false, message: 'a message must be a JSON object' }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { ok: false, message: 'a message must be a JSON object' }
  const type = (value as { type?: unknown }).type
  if (typeof type !== 'string') return { ok: false, message: 'a message needs a string `type`' }
  const validator = validators.get(type)
  if (!validator) return { ok: false, message: `unknown message type ${JSON.stringify(type.slice(0, 40))}` }
  if (!validator.Check(value)) {
    const first = validator.Errors(value)[0] as { instancePath?: string; message?: string } | undefined
    const where = first?.instancePath ? `${first.instancePath.slice(1).replace(/\//g, '.')} ` : ''
    return { ok: false, type, message: `invalid ${type}: ${where}${first?.message ?? 'does not match the schema'}` }
  }
  // `since` is keyed by task id: the schema can only say "string keys".
  if (type === 'subscribe') {
    const since = (value as { since?: Record<string, number> }).since
    const bad = since ? Object.keys(since).find((k) => !UUID.test(k)) : undefined
    if (bad !== undefined) return { ok: false, type, message: `invalid subscribe: since key ${JSON.stringify(bad.slice(0, 40))} is not a task id` }
  }
  return { ok: true, msg: value as ClientMessage }
}

export const isClientMessageType = (t: string): t is ClientMessageType => validators.has(t)
