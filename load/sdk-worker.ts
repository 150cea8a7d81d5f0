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
import WebSocket from 'ws'
import { TaskSyncClient, memoryStorage, type TaskHandle, type WebSocketConstructor } from '../src/client/node.js'
import type { TaskOp } from '../src/domain/types.js'
import { openInWaves } from './waves.js'
import { contentHash } from './canonical.js'
import type { SocketPlan } from './worker.js'
import { WorkerStats, now, serveParent } from './worker-loop.js'

interface Sock {
  plan: SocketPlan
  client: TaskSyncClient
  task: TaskHandle
  /** The rev last seen through an event, to notice jumps. */
  rev: number
  inflightAt: number
}

const sockets: Sock[] = []
const stats = new WorkerStats()
const error = (msg: string) => stats.error(msg)

/** The same op as load/worker.ts: grow the title to 40 characters, then delete one, plus the send time. */
function nextOp(s: Sock): TaskOp {
  const len = [...s.task.snapshot.title].length
  const pos = Math.floor(Math.random() * (len + 1))
  const title = len < 40 ? (pos > 0 ? [pos, 'x'] : ['x']) : pos < len ? (pos > 0 ? [pos, { d: 1 }] : [{ d: 1 }]) : [{ d: 1 }]
  return { title, customFields: { lt: { set: now() } } } as TaskOp
}

/** One op in flight per writer: the next is submitted when the SDK reports the ack. */
function submitNext(s: Sock): void {
  if (!stats.running || s.task.pending > 0) return
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
    if (op === null || s.task.rev !== s.rev + 1) stats.gaps++
    s.rev = s.task.rev
    if (op === null) return
    stats.deliveredOp((op.customFields as Record<string, { set?: unknown }> | undefined)?.lt?.set, t)
  })
  s.task.on('ack', (a) => {
    stats.acked(now() - s.inflightAt)
    if (!a.noop && a.rev !== s.rev + 1) stats.gaps++
    s.rev = s.task.rev
    submitNext(s)
  })
  s.task.on('conflict', (c) => error(`conflict ${c.kind} ${c.code ?? ''}: ${c.message}`))
  s.client.on('error', (e) => error(`client: ${e.message}`))
  s.client.on('status', (st) => {
    if (stats.running && st === 'connecting') error('socket lost, SDK reconnecting')
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

serveParent(stats, {
  open: openAll,
  startWriters: () => {
    for (const s of sockets) if (s.plan.writer) submitNext(s)
  },
  inFlight: () => sockets.some((s) => s.task.pending > 0),
  views: () =>
    sockets.map((s) => ({ taskId: s.plan.taskId, rev: s.task.rev, hash: contentHash(s.task.snapshot as unknown as Record<string, unknown>) })),
  closeAll: () => Promise.all(sockets.map((s) => s.client.close())).then(() => {}),
  get count() {
    return sockets.length
  },
})
