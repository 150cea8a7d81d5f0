/**
 * One housekeeping run, exactly once across instances: the jobs run in one
 * transaction that first takes a transaction-level advisory lock (released at
 * commit, even if the process dies) and then checks when the last run finished,
 * so two instances whose timers fire in the same interval do not both run.
 * A dry run does all the work and rolls it back: its counts are exact.
 */
import { sql } from 'drizzle-orm'
import type { Database, Executor } from '../db.js'
import { purgeTombstones, trimOpLog, trimSyncLog, type PurgeCounts } from './jobs.js'
import { purgeEvents } from '../events/outbox.js'
import { purgeNotifications } from '../events/notifications.js'

/** Any constant: the advisory lock key of housekeeping. */
export const HOUSEKEEPING_LOCK = 7_240_312
const STATE_KEY = 'housekeeping'
const DAY_MS = 86_400_000

export interface HousekeepingOptions {
  tombstoneTtlDays: number
  syncLogTtlDays: number
  /** Ops kept per task (the larger of REPLAY_WINDOW_OPS and SYNC_TRANSFORM_WINDOW_OPS). */
  replayWindowOps: number
  /** Days a delivered event is kept (EVENT_RETENTION_DAYS); absent: events are not purged. */
  eventRetentionDays?: number
  /** Days a notification (and a due-date alert that can no longer fire) is kept (NOTIFICATION_RETENTION_DAYS); absent: kept. */
  notificationRetentionDays?: number
  /** Do everything, report it, and roll it back. */
  dryRun?: boolean
  /** Skip the run when the last one finished less than this many ms ago (0: always run). */
  minIntervalMs?: number
  /** The clock (tests move it forward instead of waiting days). */
  now?: Date
}

export interface HousekeepingReport {
  ran: boolean
  /** Why it did not run: another instance holds the lock, or ran recently. */
  skipped?: 'locked' | 'recent'
  dryRun: boolean
  startedAt: string
  durationMs: number
  purged?: PurgeCounts
  syncLogTrimmed?: number
  opsTrimmed?: number
  /** Attachments reclaimed by the server after the run: expired uploads, attachments of purged tasks. */
  attachments?: { expired: number; purged: number }
  /** Delivered events purged from the outbox. */
  eventsPurged?: number
  /** Old notifications and spent due-date alerts purged. */
  notificationsPurged?: { notifications: number; dueAlerts: number }
}

class DryRun extends Error {
  constructor(readonly report: HousekeepingReport) {
    super('dry run: rolled back')
  }
}

export async function runHousekeeping(database: Database, opts: HousekeepingOptions): Promise<HousekeepingReport> {
  const now = opts.now ?? new Date()
  const started = Date.now()
  const base = { dryRun: opts.dryRun === true, startedAt: now.toISOString() }
  try {
    return await database.db.transaction(async (tx) => {
      const [lock] = await database.rows<{ ok: boolean }>(sql`select pg_try_advisory_xact_lock(${HOUSEKEEPING_LOCK}) as ok`, tx)
      if (!lock.ok) return { ...base, ran: false, skipped: 'locked', durationMs: Date.now() - started } as HousekeepingReport
      const last = await lastRunAt(database, tx)
      const since = last ? now.getTime() - last.getTime() : Infinity
      // A last run "in the future" (a test moved the clock) never blocks a run.
      if (opts.minIntervalMs && since >= 0 && since < opts.minIntervalMs)
        return { ...base, ran: false, skipped: 'recent', durationMs: Date.now() - started } as HousekeepingReport
      const purged = await purgeTombstones(database, tx, new Date(now.getTime() - opts.tombstoneTtlDays * DAY_MS))
      const syncLogTrimmed = await trimSyncLog(database, tx, new Date(now.getTime() - opts.syncLogTtlDays * DAY_MS))
      const opsTrimmed = await trimOpLog(database, tx, opts.replayWindowOps)
      const eventsPurged = opts.eventRetentionDays === undefined ? undefined : await purgeEvents(database, new Date(now.getTime() - opts.eventRetentionDays * DAY_MS), tx)
      const notificationsPurged =
        opts.notificationRetentionDays === undefined ? undefined : await purgeNotifications(database, new Date(now.getTime() - opts.notificationRetentionDays * DAY_MS), tx)
      const report: HousekeepingReport = { ...base, ran: true, durationMs: Date.now() - started, purged, syncLogTrimmed, opsTrimmed, eventsPurged, notificationsPurged }
      if (opts.dryRun) throw new DryRun(report)
      await database.rows(
        sql`insert into sync_state (key, value) values (${STATE_KEY}, ${JSON.stringify({ lastRunAt: now.toISOString(), report })}::jsonb)
            on conflict (key) do update set value = excluded.value`,
        tx,
      )
      return report
    })
  } catch (err) {
    if (err instanceof DryRun) return err.report
    throw err
  }
}

async function lastRunAt(database: Database, tx: Executor): Promise<Date | null> {
  const rows = await database.rows<{ at: string | null }>(sql`select value->>'lastRunAt' as at from sync_state where key = ${STATE_KEY}`, tx)
  return rows[0]?.at ? new Date(rows[0].at) : null
}
