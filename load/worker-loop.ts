/**
 * What both generator workers (load/worker.ts: raw protocol, load/sdk-worker.ts:
 * the client SDK) share: the counters and latency histograms they report, and the
 * IPC conversation with load/run.ts (init → ready, start, measure, stop → result).
 */
import { performance } from 'node:perf_hooks'
import { Histogram } from './histogram.js'
import type { SocketPlan } from './worker.js'

export type FromParent =
  | { type: 'init'; sockets: SocketPlan[]; recordAcks?: boolean }
  | { type: 'start' }
  | { type: 'measure' }
  | { type: 'stop' }
  | { type: 'cmd'; id: number; name: string; [k: string]: unknown }

/** An acknowledged op, checked against the op log at the end (no acked op lost). */
export interface Acked {
  taskId: string
  clientId: string
  seq: number
  rev: number
}

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
  /** Every op acked so far (only asked for when the scenario checks the op log). */
  acked?(): Acked[]
  /** Scenario-specific steps (storm: route, status; catchup: offline, online). */
  command?(msg: { name: string; [k: string]: unknown }): Promise<unknown>
  closeAll(): Promise<void> | void
  readonly count: number
}

/**
 * The generators' random choices: seeded by LOAD_SEED (plus the worker's index,
 * LOAD_WORKER_INDEX) when given, so a run's edit positions and actions repeat; Math.random otherwise.
 */
export const random: () => number = (() => {
  if (!process.env.LOAD_SEED) return Math.random
  // mulberry32
  let a = (Number(process.env.LOAD_SEED) * 1000 + Number(process.env.LOAD_WORKER_INDEX ?? 0)) >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
})()

const timeOrigin = performance.timeOrigin
/** Wall-clock milliseconds with sub-millisecond precision (the origin read once: its getter is not free). */
export const now = (): number => timeOrigin + performance.now()

export class WorkerStats {
  running = false
  /** Latencies are recorded between 'measure' (the end of the warm-up) and 'stop'. */
  measuring = false
  acks = 0
  delivered = 0
  gaps = 0
  errors = 0
  presence = 0
  comments = 0
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
  let recordAcks = false
  // Exit (not die) on the fleet's SIGTERM, so flags like --cpu-prof in LOAD_WORKER_ARGS write their output.
  process.once('SIGTERM', () => process.exit(0))
  process.on('message', async (msg: FromParent) => {
    if (msg.type === 'cmd') {
      try {
        send({ type: 'cmd-result', id: msg.id, result: await driver.command!(msg) })
      } catch (err) {
        send({ type: 'cmd-result', id: msg.id, error: String(err) })
      }
    } else if (msg.type === 'init') {
      recordAcks = !!msg.recordAcks
      try {
        await driver.open(msg.sockets)
        send({ type: 'ready', sockets: driver.count })
      } catch (err) {
        send({ type: 'failed', error: String(err) })
      }
    } else if (msg.type === 'start') {
      stats.running = true
      driver.startWriters()
      // The running totals and the measured window's fan-out histogram so far (for the progress line's p99).
      setInterval(
        () => send({ type: 'progress', acks: stats.acks, delivered: stats.delivered, errors: stats.errors, fanout: stats.fanout.toSparse(), ack: stats.ack.toSparse() }),
        1000,
      ).unref()
    } else if (msg.type === 'measure') {
      stats.measuring = true
    } else if (msg.type === 'stop') {
      stats.running = false
      stats.measuring = false
      // Let in-flight ops be acked and delivered: until nothing is pending and nothing arrived for 2 s (30 s at most),
      // so the views compared with the server are final even when latencies are seconds long (hot, a loaded box).
      const deadline = Date.now() + 30_000
      while (Date.now() < deadline && driver.inFlight()) await new Promise((r) => setTimeout(r, 50))
      for (let seen = -1; Date.now() < deadline && seen !== stats.delivered + stats.acks; ) {
        seen = stats.delivered + stats.acks
        await new Promise((r) => setTimeout(r, 2000))
      }
      const { acks, delivered, gaps, errors, errorSamples, presence, comments } = stats
      // The result is megabytes (views, acks) and a busy parent reads it slowly: exiting 500 ms
      // after sending lost it on a loaded box ("a raw worker exited (0)"). The fleet kills the
      // worker once it has the result; exiting on its own is only the fallback, well after the send.
      const result = {
        type: 'result',
        ...{ acks, delivered, gaps, errors, errorSamples, presence, comments },
        ack: stats.ack.toSparse(),
        fanout: stats.fanout.toSparse(),
        views: driver.views(),
        acked: recordAcks ? (driver.acked?.() ?? []) : [],
      }
      const sent = new Promise<void>((resolve) => process.send!(result, () => resolve()))
      await driver.closeAll()
      await sent
      setTimeout(() => process.exit(0), 10_000).unref()
    }
  })
}
