/**
 * Load generator worker driving each socket through the client SDK (one
 * TaskSyncClient per socket) instead of the raw wire protocol. Same IPC
 * messages and result shape as load/worker.ts; started by load/run.ts with
 * `--client sdk`.
 *
 * Gaps: the SDK orders ops itself and does not expose revs per event, so a gap
 * here is a rev jump it lets through: a remote `change` after which the task's
 * rev is not the previous one + 1, or an ack of a commit that is not. A whole
 * snapshot replacing the task (`op` null) counts as one too, since the SDK only
 * does that when the op stream could not be followed.
 */
import { performance } from 'node:perf_hooks'
import WebSocket from 'ws'
import { TaskSyncClient, memoryStorage, type TaskHandle, type WebSocketConstructor } from '../src/client/node.js'
import type { TaskOp } from '../src/domain/types.js'
import { Histogram } from './histogram.js'
import { openInWaves } from './waves.js'
import { contentHash } from './canonical.js'
import type { SocketPlan } from './worker.js'

type FromParent = { type: 'init'; sockets: SocketPlan[] } | { type: 'start' } | { type: 'measure' } | { type: 'stop' }

const now = () => performance.timeOrigin + performance.now()
const send = (m: unknown) => process.send!(m)

interface Sock {
  plan: SocketPlan
  client: TaskSyncClient
  task: TaskHandle
  /** The rev last seen through an event, to notice jumps. */
  rev: number
  inflightAt: number
}

const sockets: Sock[] = []
const ackHist = new Histogram()
const fanoutHist = new Histogram()
let running = false
/** Latencies are recorded between 'measure' (the end of the warm-up) and 'stop'. */
let measuring = false
let acks = 0
let delivered = 0
let gaps = 0
let errors = 0
const errorSamples: string[] = []

function error(msg: string): void {
  errors++
  if (errorSamples.length < 5) errorSamples.push(msg)
}

/** The same op as load/worker.ts: grow the title to 40 characters, then delete one, plus the send time. */
function nextOp(s: Sock): TaskOp {
  const len = [...s.task.snapshot.title].length
  const pos = Math.floor(Math.random() * (len + 1))
  const title = len < 40 ? (pos > 0 ? [pos, 'x'] : ['x']) : pos < len ? (pos > 0 ? [pos, { d: 1 }] : [{ d: 1 }]) : [{ d: 1 }]
  return { title, customFields: { lt: { set: now() } } } as TaskOp
}

/** One op in flight per writer: the next is submitted when the SDK reports the ack. */
function submitNext(s: Sock): void {
  if (!running || s.task.pending > 0) return
  s.inflightAt = now()
  try {
    s.task.submit(nextOp(s))
  } catch (err) {
    error(`submit: ${(err as Error).message}`)
  }
}

function watch(s: Sock): void {
  s.task.on('change', ({ local, op }) => {
    if (local) return
    const t = now()
    if (op === null || s.task.rev !== s.rev + 1) gaps++
    s.rev = s.task.rev
    if (op === null) return
    delivered++
    const sent = (op.customFields as Record<string, { set?: unknown }> | undefined)?.lt?.set
    if (measuring && typeof sent === 'number') fanoutHist.record(t - sent)
  })
  s.task.on('ack', (a) => {
    if (measuring) ackHist.record(now() - s.inflightAt)
    acks++
    if (!a.noop && a.rev !== s.rev + 1) gaps++
    s.rev = s.task.rev
    submitNext(s)
  })
  s.task.on('conflict', (c) => error(`conflict ${c.kind} ${c.code ?? ''}: ${c.message}`))
  s.client.on('error', (e) => error(`client: ${e.message}`))
  s.client.on('status', (st) => {
    if (running && st === 'connecting') error('socket lost, SDK reconnecting')
  })
}

async function openOne(plan: SocketPlan): Promise<void> {
  const client = new TaskSyncClient({
    url: plan.wsUrl.replace(/^ws/, 'http'),
    getAccessToken: async () => plan.token,
    clientId: plan.clientId,
    storage: memoryStorage(),
    WebSocket: WebSocket as unknown as WebSocketConstructor,
  })
  await client.connect()
  const task = await client.task(plan.taskId)
  // Loaded is not yet subscribed: ready means ops from here on reach this socket.
  if (client.status !== 'online') await new Promise<void>((r) => client.on('status', (st) => st === 'online' && r()))
  const s: Sock = { plan, client, task, rev: task.rev, inflightAt: 0 }
  watch(s)
  sockets.push(s)
}

async function openAll(plans: SocketPlan[]): Promise<void> {
  await openInWaves(plans, openOne)
}

process.on('message', async (msg: FromParent) => {
  if (msg.type === 'init') {
    try {
      await openAll(msg.sockets)
      send({ type: 'ready', sockets: sockets.length })
    } catch (err) {
      send({ type: 'failed', error: String(err) })
    }
  } else if (msg.type === 'start') {
    running = true
    for (const s of sockets) if (s.plan.writer) submitNext(s)
    const timer = setInterval(() => send({ type: 'progress', acks, delivered }), 1000)
    timer.unref()
  } else if (msg.type === 'measure') {
    measuring = true
  } else if (msg.type === 'stop') {
    running = false
    measuring = false
    // Let in-flight ops be acked and delivered.
    const deadline = Date.now() + 10_000
    while (Date.now() < deadline && sockets.some((s) => s.task.pending > 0)) await new Promise((r) => setTimeout(r, 50))
    await new Promise((r) => setTimeout(r, 1500))
    send({
      type: 'result',
      acks,
      delivered,
      gaps,
      errors,
      errorSamples,
      ack: ackHist.toSparse(),
      fanout: fanoutHist.toSparse(),
      views: sockets.map((s) => ({
        taskId: s.plan.taskId,
        rev: s.task.rev,
        hash: contentHash(s.task.snapshot as unknown as Record<string, unknown>),
      })),
    })
    await Promise.all(sockets.map((s) => s.client.close()))
    setTimeout(() => process.exit(0), 500).unref()
  }
})
