/**
 * Pull cursors: opaque base64url strings. Version 1 is JSON holding
 *   s: the snapshot the catch-up starts after (null: from the beginning),
 *   t: while a catch-up has more pages, the snapshot taken at its first page,
 *   p: while it has more pages, the position reached: [source, change_xid, id].
 * A finished catch-up hands out `{s: t}`: everything visible in t was returned, and
 * whatever t could not see (a transaction still in progress) comes next time.
 */
import { parseSnapshot, type PgSnapshot } from './snapshot.js'

const VERSION = 1
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
const XID = /^\d{1,20}$/

/** Where a paginated catch-up stopped: 0 = tasks, 1 = comments, 2 = attachments. */
export interface PullPosition {
  source: 0 | 1 | 2
  xid: string
  id: string
}

export interface PullCursor {
  since: PgSnapshot | null
  /** Present while the catch-up has more pages. */
  page?: { target: PgSnapshot; position: PullPosition }
}

/** Encodes a cursor as the opaque string clients store. */
export function encodeCursor(c: PullCursor): string {
  const body: Record<string, unknown> = { v: VERSION, s: c.since?.text ?? null }
  if (c.page) {
    const p = c.page.position
    body.t = c.page.target.text
    body.p = [p.source, p.xid, p.id]
  }
  return Buffer.from(JSON.stringify(body)).toString('base64url')
}

/** Decodes a cursor; null for anything this server did not issue in this format. */
export function decodeCursor(text: string): PullCursor | null {
  if (!/^[A-Za-z0-9_-]{1,4096}$/.test(text)) return null
  let body: unknown
  try {
    body = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'))
  } catch {
    return null
  }
  if (typeof body !== 'object' || body === null) return null
  const b = body as Record<string, unknown>
  if (b.v !== VERSION) return null
  const since = b.s === null ? null : parseSnapshot(b.s)
  if (since === null && b.s !== null) return null
  if (b.t === undefined && b.p === undefined) return { since }
  const target = parseSnapshot(b.t)
  const p = b.p
  if (!target || !Array.isArray(p) || p.length !== 3) return null
  const [source, xid, id] = p as unknown[]
  if ((source !== 0 && source !== 1 && source !== 2) || typeof xid !== 'string' || !XID.test(xid) || typeof id !== 'string' || !UUID.test(id)) return null
  // The target is taken after `since`, so it cannot see less.
  if (since && target.xmax < since.xmax) return null
  return { since, page: { target, position: { source, xid, id } } }
}
