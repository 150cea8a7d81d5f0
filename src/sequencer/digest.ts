/**
 * The digest of a mutation, kept with its (clientId, seq) record so that a resend
 * (the same mutation again) is told from a different mutation under a used seq
 * (another writer sharing the clientId: PROTOCOL.md section 3). It is the SHA-256,
 * base64url, of the RFC 8785 (JCS) canonical JSON of the mutation's form: the task
 * id and what the mutation does, never its baseRev, transport or time.
 */
import * as crypto from 'node:crypto'
import type { TaskContent, TaskOp, TaskPatch } from '../domain/types.js'

/** What a mutation does, as digested. */
export type MutationForm =
  /** A create: the task's initial content (projectId included), as contentFromInit gives it. */
  | { kind: 'create'; taskId: string; task: TaskContent }
  /** An op, normalized, expressed at the rev it committed at (or was a no-op at). */
  | { kind: 'op'; taskId: string; op: TaskOp }
  /** A REST PATCH of plain field values: the values as sent (the op is derived from the snapshot). */
  | { kind: 'patch'; taskId: string; fields: TaskPatch }
  /** A comment change; edit and delete name no task (REST does not give it). */
  | { kind: 'comment'; action: 'create' | 'edit' | 'delete'; commentId: string; taskId?: string; parentId?: string | null; body?: string }

/** Version of the encoding, part of what is digested: a later change of forms never matches an old digest by accident. */
const VERSION = 1

// One-shot hashing where Node has it (20.12 and later): no Hash object per digest.
const oneShot = (crypto as { hash?: (algorithm: string, data: string, encoding: string) => string }).hash
const sha256 = oneShot ? (text: string) => oneShot('sha256', text, 'base64url') : (text: string) => crypto.createHash('sha256').update(text).digest('base64url')

export function mutationDigest(form: MutationForm): string {
  return sha256(canonicalJson({ v: VERSION, ...form }))
}

/**
 * RFC 8785 (JCS) canonical JSON, as the `canonicalize` package writes it (the
 * digests recorded so far were made with it; test/sequencer/digest.test.ts holds
 * the two to the same output): keys sorted by UTF-16 code units, undefined and
 * symbol members left out (null in arrays), toJSON honoured, NaN and Infinity
 * refused. One pass appending to one string, run once per mutation.
 */
export function canonicalJson(value: unknown): string {
  if (typeof value === 'number') {
    if (Number.isNaN(value)) throw new Error('NaN is not allowed')
    if (!Number.isFinite(value)) throw new Error('Infinity is not allowed')
  }
  if (value === null || typeof value !== 'object') return JSON.stringify(value)
  const o = value as Record<string, unknown>
  if (o.toJSON instanceof Function) return canonicalJson((o.toJSON as () => unknown)())
  if (Array.isArray(value)) {
    let out = '['
    for (let i = 0; i < value.length; i++) {
      const item = value[i]
      if (i > 0) out += ','
      out += canonicalJson(item === undefined || typeof item === 'symbol' ? null : item)
    }
    return out + ']'
  }
  const keys = Object.keys(o).sort()
  let out = '{'
  for (let i = 0; i < keys.length; i++) {
    const member = o[keys[i]]
    if (member === undefined || typeof member === 'symbol') continue
    if (out.length > 1) out += ','
    out += `${JSON.stringify(keys[i])}:${canonicalJson(member)}`
  }
  return out + '}'
}
