#!/usr/bin/env node
/**
 * `npm run housekeeping -- [--dry-run] [--json]`: the server's housekeeping jobs,
 * run once now against DATABASE_URL (or the PGlite store under DATA_DIR), with
 * the same configuration variables. Takes the same advisory lock, so it never
 * runs at the same time as a server's scheduled run. A dry run reports exact
 * counts and rolls everything back.
 */
import { parseArgs } from 'node:util'
import { loadConfig } from '../config/index.js'
import { openDatabase } from '../storage/db.js'
import { runHousekeeping, type HousekeepingReport } from '../storage/housekeeping/run.js'

const USAGE = `usage: npm run housekeeping -- [--dry-run] [--json]
  Purges deletions older than TOMBSTONE_TTL_DAYS (moving the tombstone horizon),
  trims the sync log (SYNC_LOG_TTL_DAYS) and each task's op log to its last max(REPLAY_WINDOW_OPS, SYNC_TRANSFORM_WINDOW_OPS) ops.
  Delivered outbox events older than EVENT_RETENTION_DAYS are purged, and
  notifications older than NOTIFICATION_RETENTION_DAYS.
  --dry-run  do everything, print it, roll it back
  --json     print the report as JSON
  With the embedded PGlite store (no DATABASE_URL), stop the server first: one process owns DATA_DIR.`

function describeReport(r: HousekeepingReport): string {
  if (!r.ran) return `housekeeping did not run: ${r.skipped === 'locked' ? 'another run holds the lock' : 'it ran recently'}`
  const p = r.purged!
  const verb = r.dryRun ? 'would purge' : 'purged'
  return [
    `housekeeping ${r.dryRun ? 'dry run (rolled back)' : 'done'} in ${r.durationMs} ms`,
    `  deletions: ${verb} ${p.tasks} tasks (${p.ops} ops), ${p.comments} comments, ${p.tombstones} tombstones`,
    `  horizon: ${p.horizonXid === null ? 'unchanged' : `${r.dryRun ? 'would move' : 'moved'} to xid ${p.horizonXid}`}`,
    `  sync log: ${r.dryRun ? 'would trim' : 'trimmed'} ${r.syncLogTrimmed} entries`,
    `  op log: ${r.dryRun ? 'would trim' : 'trimmed'} ${r.opsTrimmed} ops beyond the replay window`,
    ...(r.eventsPurged === undefined ? [] : [`  outbox: ${verb} ${r.eventsPurged} delivered events`]),
    ...(r.notificationsPurged === undefined ? [] : [`  notifications: ${verb} ${r.notificationsPurged.notifications}, and ${r.notificationsPurged.dueAlerts} spent due-date alerts`]),
  ].join('\n')
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { 'dry-run': { type: 'boolean' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } })
  if (values.help) {
    console.log(USAGE)
    return
  }
  const config = loadConfig(process.env)
  const database = await openDatabase({ databaseUrl: config.DATABASE_URL, dataDir: config.DATA_DIR, poolSize: 2 })
  try {
    const report = await runHousekeeping(database, {
      tombstoneTtlDays: config.TOMBSTONE_TTL_DAYS,
      syncLogTtlDays: config.SYNC_LOG_TTL_DAYS,
      // The log keeps what an op may still be transformed past (SYNC_TRANSFORM_WINDOW_OPS), never less than a resume replays.
      replayWindowOps: Math.max(config.REPLAY_WINDOW_OPS, config.SYNC_TRANSFORM_WINDOW_OPS),
      eventRetentionDays: config.EVENT_RETENTION_DAYS,
      notificationRetentionDays: config.NOTIFICATION_RETENTION_DAYS,
      dryRun: values['dry-run'] === true,
    })
    console.log(values.json ? JSON.stringify(report, null, 2) : describeReport(report))
  } finally {
    await database.close()
  }
}

main().catch((err) => {
  console.error(`housekeeping failed: ${err instanceof Error ? err.message : String(err)}`)
  process.exitCode = 1
})
