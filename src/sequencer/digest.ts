/**
 * The digest of a mutation, kept with its (clientId, seq) record so that a resend
 * (the same mutation again) is told from a different mutation under a used seq
 * (another writer sharing the clientId: PROTOCOL.md section 3). It is the SHA-256,
 * base64url, of the RFC 8785 (JCS) canonical JSON of the mutation's form: the task
 * id and what the mutation does, never its baseRev, transport or time.
 */
import { createHash } from 'node:crypto'
import canonicalizeModule from 'canonicalize'
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

// canonicalize is CommonJS: its default import is the function itself.
const canonicalize = canonicalizeModule as unknown as (input: unknown) => string | undefined

/** Version of the encoding, part of what is digested: a later change of forms never matches an old digest by accident. */
const VERSION = 1

export function mutationDigest(form: MutationForm): string {
  const text = canonicalize({ v: VERSION, ...form })
  if (text === undefined) throw new Error('a mutation form must be JSON')
  return createHash('sha256').update(text).digest('base64url')
}
