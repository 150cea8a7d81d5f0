/**
 * Catch-up: the op ranges devices read (storage/sync/op-ranges.ts), how often they
 * were served from memory, read from the log, or waited for another one's read of
 * the same task; and the gate REST catch-up requests pass (catchup-gate.ts), with
 * what it admitted, made wait and refused. Read at scrape time.
 */
import fp from 'fastify-plugin'
import { Gauge } from 'prom-client'
import { scrapedCounter } from '../metrics/scraped.js'
import type { OpRangeStats } from '../storage/sync/op-ranges.js'
import { CatchupGate, type CatchupGateStats } from './catchup-gate.js'

declare module 'fastify' {
  interface FastifyInstance {
    catchupGate: CatchupGate
    /**
     * Runs one REST catch-up request through the gate; a refusal (`unavailable`, `details.retryAfterS`) answers
     * with `Retry-After` (http/errors.ts). `deviceId`: the caller's device, whose follow-up requests go first.
     */
    catchup<T>(fn: () => Promise<T>, deviceId?: string): Promise<T>
  }
}

export default fp(
  async (app) => {
    const { opRanges } = app
    const registers = [app.metrics.registry]
    const counter = (name: string, help: string, read: (s: OpRangeStats) => number) =>
      scrapedCounter(app.metrics.registry, name, help, () => read(opRanges.stats))
    counter('tasksync_op_ranges_hits_total', 'Op log requests answered whole from memory', (s) => s.hits)
    counter('tasksync_op_ranges_reads_total', 'Op log reads made for op range requests', (s) => s.reads)
    counter('tasksync_op_ranges_read_ops_total', 'Ops those reads returned', (s) => s.readOps)
    counter('tasksync_op_ranges_coalesced_total', "Op log requests that waited for another one's read of the same task", (s) => s.coalesced)
    new Gauge({
      name: 'tasksync_op_ranges_held_chars',
      help: 'JSON characters of ops held in memory for catch-ups',
      registers,
      collect() {
        this.set(opRanges.size)
      },
    })

    const gate = new CatchupGate(app.config.SYNC_CATCHUP_CONCURRENCY, app.config.SYNC_CATCHUP_MAX_WAITING)
    app.decorate('catchupGate', gate)
    app.decorate('catchup', <T>(fn: () => Promise<T>, deviceId?: string): Promise<T> => gate.run(fn, deviceId))
    const gateCounter = (name: string, help: string, read: (s: CatchupGateStats) => number) =>
      scrapedCounter(app.metrics.registry, name, help, () => read(gate.stats))
    gateCounter('tasksync_catchup_admitted_total', 'REST catch-up requests (push, pull, op log pages) that ran', (s) => s.admitted)
    gateCounter('tasksync_catchup_follow_ups_total', "Of those, requests that went ahead as follow-ups of a device's catch-up under way", (s) => s.followUps)
    gateCounter('tasksync_catchup_refused_total', 'REST catch-up requests refused (503) because too many waited', (s) => s.refused)
    gateCounter('tasksync_catchup_waited_seconds_total', 'Time REST catch-up requests waited for their turn', (s) => s.waitedMs / 1000)
    new Gauge({
      name: 'tasksync_catchup_waiting',
      help: 'REST catch-up requests waiting for their turn now',
      registers,
      collect() {
        this.set(gate.waiting)
      },
    })
  },
  { name: 'sync', dependencies: ['storage', 'metrics'] },
)
