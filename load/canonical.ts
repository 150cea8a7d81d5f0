import { createHash } from 'node:crypto'

/** JSON with object keys sorted, so equal content always serialises alike. */
export function canonical(v: unknown): string {
  if (Array.isArray(v)) return '[' + v.map(canonical).join(',') + ']'
  if (v && typeof v === 'object')
    return '{' + Object.keys(v).sort().map((k) => JSON.stringify(k) + ':' + canonical((v as Record<string, unknown>)[k])).join(',') + '}'
  return JSON.stringify(v)
}

/** Hash of a task's content fields (metadata stripped). */
export function contentHash(task: Record<string, unknown>): string {
  const { id, rev, clock, createdAt, updatedAt, updatedBy, ...content } = task
  void id, rev, clock, createdAt, updatedAt, updatedBy
  return createHash('sha1').update(canonical(content)).digest('hex')
}
