/**
 * PostgreSQL snapshots (`pg_current_snapshot()`, text `xmin:xmax:xip,…`) as pull
 * cursors. A snapshot names exactly which transactions had committed when it was
 * taken, so "changed after cursor C" is "written by a transaction C cannot see":
 * a transaction that commits late, on any instance, is still after C.
 */

/** A parsed pg_snapshot: xids are decimal strings of xid8 values. */
export interface PgSnapshot {
  xmin: bigint
  xmax: bigint
  xip: bigint[]
  /** The canonical text form, safe to cast with `::pg_snapshot`. */
  text: string
}

const SNAPSHOT = /^(\d{1,20}):(\d{1,20}):((?:\d{1,20})(?:,\d{1,20})*)?$/

/** Parses the text form; null when it is not a well-formed snapshot PostgreSQL would accept. */
export function parseSnapshot(text: unknown): PgSnapshot | null {
  if (typeof text !== 'string') return null
  const m = SNAPSHOT.exec(text)
  if (!m) return null
  const xmin = BigInt(m[1])
  const xmax = BigInt(m[2])
  const xip = m[3] ? m[3].split(',').map((x) => BigInt(x)) : []
  // xid8 values are 64-bit; PostgreSQL rejects xmin > xmax and in-progress xids outside [xmin, xmax).
  if (xmax >= 2n ** 63n || xmin > xmax || xmin === 0n) return null
  for (let i = 0; i < xip.length; i++) {
    if (xip[i] < xmin || xip[i] >= xmax) return null
    if (i > 0 && xip[i] <= xip[i - 1]) return null
  }
  return { xmin, xmax, xip, text: `${xmin}:${xmax}:${xip.join(',')}` }
}

/** True when a transaction with this xid had committed (or aborted) before the snapshot. */
export function isVisibleIn(xid: bigint, s: PgSnapshot): boolean {
  return xid < s.xmin || (xid < s.xmax && !s.xip.includes(xid))
}
