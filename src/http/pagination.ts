/**
 * Opaque cursors for `{items, nextCursor}` lists: base64url JSON of the sort key
 * of the last item. A cursor that does not decode is the client's mistake (400).
 */
import { TaskSyncError } from '../protocol/errors.js'

export function encodeCursor(key: Record<string, string | number>): string {
  return Buffer.from(JSON.stringify(key)).toString('base64url')
}

/** Decodes a cursor made by encodeCursor; `check` says whether the key has the expected shape. */
export function decodeCursor<T>(cursor: string, check: (key: unknown) => key is T): T {
  let key: unknown
  try {
    key = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'))
  } catch {
    throw new TaskSyncError('bad_request', 'malformed cursor')
  }
  if (!check(key)) throw new TaskSyncError('bad_request', 'malformed cursor')
  return key
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/** Cursor check for lists ordered by id. */
export function isIdKey(key: unknown): key is { id: string } {
  return typeof key === 'object' && key !== null && typeof (key as { id?: unknown }).id === 'string' && UUID.test((key as { id: string }).id)
}

/**
 * Cursor check for search results ordered by tier (1 or 2), rank (a real, as text), then id.
 * A cursor without a tier (made before tiers) reads as tier 1.
 */
export function isRankKey(key: unknown): key is { tier?: 1 | 2; rank: string; id: string } {
  if (!isIdKey(key)) return false
  const { rank, tier } = key as { rank?: unknown; tier?: unknown }
  if (tier !== undefined && tier !== 1 && tier !== 2) return false
  return typeof rank === 'string' && /^[0-9.e+-]{1,32}$/i.test(rank) && Number.isFinite(Number(rank))
}

/** Takes `limit + 1` rows (fetched to learn whether more exist) and builds the page. */
export function toPage<T>(rows: T[], limit: number, keyOf: (row: T) => Record<string, string | number>): { items: T[]; nextCursor: string | null } {
  const items = rows.slice(0, limit)
  const nextCursor = rows.length > limit ? encodeCursor(keyOf(items[items.length - 1])) : null
  return { items, nextCursor }
}
