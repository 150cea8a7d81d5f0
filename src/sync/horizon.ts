/**
 * The tombstone horizon: the newest transaction whose deletions housekeeping has
 * purged. A cursor that cannot see that transaction may have missed a purged
 * tombstone, so it answers `reset`.
 */
import { sql } from 'drizzle-orm'
import type { Database, Executor } from '../storage/db.js'
import type { PgSnapshot } from './snapshot.js'

export const HORIZON_KEY = 'tombstone_horizon'

export interface Horizon {
  xid: bigint
  at: string
}

/** The current horizon, or null while nothing was ever purged. */
export async function readHorizon(database: Database, exec?: Executor): Promise<Horizon | null> {
  const rows = await database.rows<{ xid: string | null; at: string | null }>(
    sql`select horizon_xid::text as xid, to_char(horizon_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as at
        from sync_state where key = ${HORIZON_KEY}`,
    exec,
  )
  const r = rows[0]
  return r?.xid ? { xid: BigInt(r.xid), at: r.at ?? '' } : null
}

/** Moves the horizon forward to `xid` (never back). */
export async function advanceHorizon(database: Database, xid: bigint, exec?: Executor): Promise<void> {
  await database.rows(
    sql`insert into sync_state (key, horizon_xid, horizon_at) values (${HORIZON_KEY}, ${xid.toString()}::xid8, now())
        on conflict (key) do update set horizon_xid = greatest(sync_state.horizon_xid, excluded.horizon_xid), horizon_at = now()`,
    exec,
  )
}

/**
 * True when a cursor taken at `since` may have missed something purged: some
 * transaction at or below the horizon was not yet visible to it. Every xid below a
 * snapshot's xmin is finished, so `xmin > horizon` means it saw them all.
 */
export function isBeforeHorizon(since: PgSnapshot, horizon: Horizon | null): boolean {
  return horizon !== null && since.xmin <= horizon.xid
}
