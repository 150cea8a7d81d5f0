/**
 * Runs housekeeping inside the server every HOUSEKEEPING_INTERVAL_S seconds
 * (0 = never). Every instance has the timer; the advisory lock and the last-run
 * check in runHousekeeping make one of them do the work per interval.
 * Decorates `app.housekeeping.run()` for admins and tests.
 */
import fp from 'fastify-plugin'
import { runHousekeeping, type HousekeepingOptions, type HousekeepingReport } from '../storage/housekeeping/run.js'

declare module 'fastify' {
  interface FastifyInstance {
    housekeeping: {
      /** One run now, with the configured TTLs unless overridden. */
      run(overrides?: Partial<HousekeepingOptions>): Promise<HousekeepingReport>
    }
  }
}

export default fp(
  async (app) => {
    const config = app.config
    const intervalMs = config.HOUSEKEEPING_INTERVAL_S * 1000
    // setTimeout fires at once for delays past 2^31-1 ms (24.8 days).
    const delayMs = Math.min(intervalMs, 2 ** 31 - 1)
    const run = async (overrides: Partial<HousekeepingOptions> = {}) => {
      const report = await runHousekeeping(app.database, {
        tombstoneTtlDays: config.TOMBSTONE_TTL_DAYS,
        syncLogTtlDays: config.SYNC_LOG_TTL_DAYS,
        // The log keeps what an op may still be transformed past (SYNC_TRANSFORM_WINDOW_OPS), never less than a resume replays.
        replayWindowOps: Math.max(config.REPLAY_WINDOW_OPS, config.SYNC_TRANSFORM_WINDOW_OPS),
        eventRetentionDays: config.EVENT_RETENTION_DAYS,
        notificationRetentionDays: config.NOTIFICATION_RETENTION_DAYS,
        ...overrides,
      })
      // Bytes of expired uploads and of attachments whose task was purged (outside the run's transaction: blob I/O).
      if (report.ran && !report.dryRun) report.attachments = await app.attachments.reclaim(overrides.now)
      return report
    }
    app.decorate('housekeeping', { run })
    if (intervalMs <= 0) return

    let timer: NodeJS.Timeout | undefined
    let running: Promise<unknown> = Promise.resolve()
    const tick = () => {
      running = run({ minIntervalMs: intervalMs / 2 })
        .then((report) => {
          if (report.ran) app.log.info({ housekeeping: report }, 'housekeeping done')
        })
        .catch((err) => app.log.warn({ err }, 'housekeeping failed; retrying next interval'))
        .finally(() => {
          if (timer) timer = setTimeout(tick, delayMs).unref()
        })
    }
    app.addHook('onReady', async () => {
      // A random first delay spreads instances started together over the interval.
      timer = setTimeout(tick, Math.round(delayMs * (0.5 + Math.random() / 2))).unref()
    })
    app.addHook('onClose', async () => {
      clearTimeout(timer)
      timer = undefined
      await running
    })
  },
  { name: 'housekeeping', dependencies: ['config', 'storage', 'attachments'] },
)
