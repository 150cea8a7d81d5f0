/**
 * The tombstone horizon: what housekeeping purged, summarised so a pull can tell
 * whether a cursor might have missed a purged deletion (then it answers `reset`).
 *
 * Stored: `xid`, the newest transaction whose rows were purged, and `running`, the
 * transactions at or below it that were still in progress when the purge finished
 * (a purge never removes their rows). A cursor's snapshot C saw every purged
 * transaction when C.xmax > xid and each xid C listed as in progress is either
 * above `xid` or one of `running`: any purged transaction p ≤ xid is below C.xmax
 * and, having committed before the purge, cannot be in C's in-progress list unless
 * C predates its commit. A cursor issued after a purge always passes (whatever
 * was in progress then at or below `xid` was already in progress at the purge), so
 * a long-running transaction never makes fresh cursors reset.
 */
import { sql } from 'drizzle-orm'
import type { Database, Executor } from '../db.js'
import type { PgSnapshot } from './snapshot.js'

export const HORIZON_KEY = 'tombstone_horizon'

export interface Horizon {
  xid: bigint
  /** In progress at the purge and at or below `xid`: never purged. */
  running: bigint[]
  at: string
}

/** The current horizon, or null while nothing was ever purged. */
export async function readHorizon(database: Database, exec?: Executor): Promise<Horizon | null> {
  const rows = await database.rows<{ xid: string | null; running: string[] | null; at: string | null }>(
    sql`select horizon_xid::text as xid, value->'running' as running,
          to_char(horizon_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as at
        from sync_state where key = ${HORIZON_KEY}`,
    exec,
  )
  const r = rows[0]
  return r?.xid ? { xid: BigInt(r.xid), running: (r.running ?? []).map(BigInt), at: r.at ?? '' } : null
}

/**
 * Moves the horizon after a purge whose newest purged transaction is `purged`.
 * `after` is a snapshot taken in the purging transaction after its deletes.
 * The horizon never moves back.
 */
export async function advanceHorizon(database: Database, purged: bigint, after: PgSnapshot, exec?: Executor): Promise<Horizon> {
  const old = await readHorizon(database, exec)
  const xid = old && old.xid > purged ? old.xid : purged
  const running = after.xip.filter((x) => x <= xid)
  await database.rows(
    sql`insert into sync_state (key, horizon_xid, horizon_at, value)
        values (${HORIZON_KEY}, ${xid.toString()}::xid8, now(), ${JSON.stringify({ running: running.map(String) })}::jsonb)
        on conflict (key) do update set horizon_xid = excluded.horizon_xid, horizon_at = excluded.horizon_at, value = excluded.value`,
    exec,
  )
  return { xid, running, at: new Date().toISOString() }
}

/** True when a cursor taken at `since` may have missed something purged. */
export function isBeforeHorizon(since: PgSnapshot, horizon: Horizon | null): boolean {
  if (horizon === null) return false
  if (since.xmax <= horizon.xid) return true
  return since.xip.some((x) => x <= horizon.xid && !horizon.running.includes(x))
}
