/**
 * Catch-up metrics: how often the op ranges devices read (storage/sync/op-ranges.ts)
 * were served from memory, how often the log was read for them, and how many
 * requests waited for another one's read of the same task. Read at scrape time.
 */
import fp from 'fastify-plugin'
import { Gauge } from 'prom-client'
import { scrapedCounter } from '../metrics/scraped.js'
import type { OpRangeStats } from '../storage/sync/op-ranges.js'

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
  },
  { name: 'sync', dependencies: ['storage', 'metrics'] },
)
