/**
 * Decorates `app.sequencer` (task ops) on the app's task store. On close it
 * drains: new mutations answer `unavailable`, begun commits finish and are
 * published before the bus and the database close.
 */
import fp from 'fastify-plugin'
import type { Registry } from 'prom-client'
import { scrapedCounter } from '../metrics/scraped.js'
import { TaskSequencer } from './sequencer.js'

declare module 'fastify' {
  interface FastifyInstance {
    sequencer: TaskSequencer
  }
}

export default fp(
  async (app) => {
    const { config, taskStore, bus } = app
    const logger = app.log.child({ module: 'sequencer' })
    const sequencer = new TaskSequencer({
      store: taskStore,
      bus,
      limits: config.limits,
      instanceId: config.INSTANCE_ID,
      // How far behind an op may be transformed: past the replay window too, while the log holds the ops.
      replayWindow: Math.max(config.REPLAY_WINDOW_OPS, config.SYNC_TRANSFORM_WINDOW_OPS),
      logger,
      fault: config.TASKSYNC_FAULT === 'ack-before-commit' ? 'ack-before-commit' : undefined,
    })
    registerCommitMetrics(app.metrics.registry, sequencer)
    app.decorate('sequencer', sequencer)
    // preClose runs before any onClose hook, so the bus and database are still open.
    app.addHook('preClose', () => sequencer.drain())
  },
  { name: 'sequencer', dependencies: ['config', 'storage', 'bus', 'metrics'] },
)

/**
 * Group-commit counters, read from the sequencer at scrape time (no work per commit):
 * rows / statements is the mean batch; the time sums split a commit's latency into
 * waiting for a statement slot and the statement itself.
 */
function registerCommitMetrics(registry: Registry, sequencer: TaskSequencer): void {
  const counter = (name: string, help: string, read: (s: TaskSequencer['commitStats']) => number) =>
    scrapedCounter(registry, name, help, () => read(sequencer.commitStats))
  counter('tasksync_commit_statements_total', 'Group-commit statements written', (s) => s.statements)
  counter('tasksync_commit_rows_total', 'Ops written by group-commit statements', (s) => s.rows)
  counter('tasksync_commit_statement_seconds_total', 'Time spent in group-commit statements', (s) => s.statementMs / 1000)
  counter('tasksync_commit_queued_seconds_total', 'Time ops waited for a group-commit statement, summed over ops', (s) => s.queuedMs / 1000)
  counter('tasksync_commit_lost_races_total', 'Commits that lost a race to another instance and were retried', (s) => s.lostRaces)
}
