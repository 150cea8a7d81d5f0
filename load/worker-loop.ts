/**
 * What both generator workers (load/worker.ts: raw protocol, load/sdk-worker.ts:
 * the client SDK) share: the counters and latency histograms they report, and the
 * IPC conversation with load/run.ts (init → ready, start, measure, stop → result).
 */
import { performance } from 'node:perf_hooks'
import { Histogram } from './histogram.js'
import type { SocketPlan } from './worker.js'

export type FromParent = { type: 'init'; sockets: SocketPlan[] } | { type: 'start' } | { type: 'measure' } | { type: 'stop' }

/** One socket's final view of its task, compared with the server's snapshot. */
export interface View {
  taskId: string
  rev: number
  hash: string
}

/** How a worker drives its sockets; the loop does the rest. */
export interface Driver {
  open(plans: SocketPlan[]): Promise<void>
  /** Sends every writer's first op. */
  startWriters(): void
  /** True while some writer still waits for an ack. */
  inFlight(): boolean
  views(): View[]
  closeAll(): Promise<void> | void
  readonly count: number
}

export const now = (): number => performance.timeOrigin + performance.now()

export class WorkerStats {
  running = false
  /** Latencies are recorded between 'measure' (the end of the warm-up) and 'stop'. */
  measuring = false
  acks = 0
  delivered = 0
  gaps = 0
  errors = 0
  readonly errorSamples: string[] = []
  readonly ack = new Histogram()
  readonly fanout = new Histogram()

  error(msg: string): void {
    this.errors++
    if (this.errorSamples.length < 5) this.errorSamples.push(msg)
  }

  /** An ack `ms` after its op was sent. */
  acked(ms: number): void {
    this.acks++
    if (this.measuring) this.ack.record(ms)
  }

  /** A remote op delivered; `sentAt` is the writer's timestamp in it, when it has one. */
  deliveredOp(sentAt: unknown, at: number): void {
    this.delivered++
    if (this.measuring && typeof sentAt === 'number') this.fanout.record(at - sentAt)
  }
}

/** Answers load/run.ts until 'stop' has been reported, then exits. */
export function serveParent(stats: WorkerStats, driver: Driver): void {
  const send = (m: unknown) => process.send!(m)
  process.on('message', async (msg: FromParent) => {
    if (msg.type === 'init') {
      try {
        await driver.open(msg.sockets)
        send({ type: 'ready', sockets: driver.count })
      } catch (err) {
        send({ type: 'failed', error: String(err) })
      }
    } else if (msg.type === 'start') {
      stats.running = true
      driver.startWriters()
      setInterval(() => send({ type: 'progress', acks: stats.acks, delivered: stats.delivered }), 1000).unref()
    } else if (msg.type === 'measure') {
      stats.measuring = true
    } else if (msg.type === 'stop') {
      stats.running = false
      stats.measuring = false
      // Let in-flight ops be acked and delivered.
      const deadline = Date.now() + 10_000
      while (Date.now() < deadline && driver.inFlight()) await new Promise((r) => setTimeout(r, 50))
      await new Promise((r) => setTimeout(r, 1500))
      const { acks, delivered, gaps, errors, errorSamples } = stats
      send({ type: 'result', acks, delivered, gaps, errors, errorSamples, ack: stats.ack.toSparse(), fanout: stats.fanout.toSparse(), views: driver.views() })
      await driver.closeAll()
      setTimeout(() => process.exit(0), 500).unref()
    }
  })
}
