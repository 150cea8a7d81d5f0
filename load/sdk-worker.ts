/**
 * Load generator worker driving each socket through the client SDK (one
 * TaskSyncClient per socket) instead of the raw wire protocol. Same IPC
 * messages and result shape as load/worker.ts. A plan's `role` says what the
 * client does: `writer` keeps one op in flight (steady, hot, storm),
 * `subscriber` only listens, `human` edits, sets presence and comments at a
 * human rate (mixed), `device` goes offline, queues edits and comes back
 * (catchup).
 *
 * Gaps: the SDK orders ops itself and does not expose revs per event, so a gap
 * here is a rev jump it lets through: a remote `change` after which the task's
 * rev is not the previous one + 1, or an ack of a commit that is not. A whole
 * snapshot replacing the task (`op` null) counts as one too, since the SDK only
 * does that when the op stream could not be followed — except for a device
 * coming back, which is expected to catch up by snapshot.
 *
 * Routing: the SDK reaches its instance through `route()`, so a storm can move
 * every client of a killed instance to the survivor (what a load balancer does).
 */
import WebSocket from 'ws'
import { TaskSyncClient, memoryStorage, type TaskHandle, type WebSocketConstructor } from '../src/client/node.js'
import type { TaskOp } from '../src/domain/types.js'
import { openInWaves } from './waves.js'
import { contentHash } from './canonical.js'
import type { SocketPlan } from './worker.js'
import { WorkerStats, now, random, serveParent, type Acked } from './worker-loop.js'

interface Sock {
  plan: SocketPlan
  client: TaskSyncClient
  task: TaskHandle
  /** The rev last seen through an event, to notice jumps. */
  rev: number
  inflightAt: number
  /** When a device came back online (catchup) or its instance was killed (storm), and when it was in sync again. */
  lostAt: number
  resumedAt: number
  /** A device catching up: its rev may jump. */
  catchingUp: boolean
  timer?: NodeJS.Timeout
  /** Storm phases after the loss: socket attempts made, the last attempt, its open, its welcome (status syncing). */
  attempts: number
  lastAttemptAt: number
  openedAt: number
  welcomedAt: number
}

const sockets: Sock[] = []
const stats = new WorkerStats()
const acked: Acked[] = []
const error = (msg: string) => stats.error(msg)
/** Base URL → the URL it is served by now (a storm points the killed instance at the survivor). */
const routes = new Map<string, string>()
let expectLoss = false

function route(url: string): string {
  for (const [from, to] of routes) if (url.startsWith(from)) return to + url.slice(from.length)
  return url
}
/** A socket class per client: it routes, and counts the client's attempts for the storm's phases. */
function routedWebSocket(s: () => Sock | undefined) {
  return class RoutedWebSocket extends WebSocket {
    constructor(url: string) {
      super(route(url), { perMessageDeflate: false })
      const sock = s()
      if (!sock?.lostAt) return
      sock.attempts++
      sock.lastAttemptAt = now()
      this.once('open', () => (sock.openedAt = now()))
    }
  }
}
const routedFetch = (input: string, init?: RequestInit) => fetch(route(input), init)

/**
 * The same op as load/worker.ts: grow the title to 40 characters, then delete
 * one, plus the send time. The time goes in a field of this client's own
 * (`lt_<clientId>`): concurrent sets of one field on a hot task would drop
 * all but one and with them the fan-out samples.
 */
function nextOp(s: Sock): TaskOp {
  const len = [...s.task.snapshot.title].length
  const pos = Math.floor(random() * (len + 1))
  const title = len < 40 ? (pos > 0 ? [pos, 'x'] : ['x']) : pos < len ? (pos > 0 ? [pos, { d: 1 }] : [{ d: 1 }]) : [{ d: 1 }]
  return { title, customFields: { [`lt_${s.plan.clientId.slice(0, 8)}`]: { set: now() } } } as TaskOp
}

/** The send time in a remote op (see nextOp). */
function sentAt(op: TaskOp): unknown {
  const fields = op.customFields as Record<string, { set?: unknown }> | undefined
  for (const k in fields) if (k.startsWith('lt')) return fields[k]?.set
  return undefined
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

/** A human: every few seconds (exponential gaps around `actionsPerMin`) an edit (60 %), a presence update (30 %) or a comment (10 %). */
function actLikeAHuman(s: Sock): void {
  const perMin = s.plan.actionsPerMin ?? 6
  const gap = -Math.log(1 - random()) * (60_000 / perMin)
  s.timer = setTimeout(() => {
    if (!stats.running) return
    const r = random()
    try {
      if (r < 0.6) {
        s.inflightAt = now()
        s.task.submit(nextOp(s))
      } else if (r < 0.9) s.task.setPresence({ cursor: Math.floor(random() * 40), at: now() })
      else {
        s.task.addComment(`load comment ${random().toString(36).slice(2, 8)}`)
        stats.comments++
      }
    } catch (err) {
      error(`act: ${(err as Error).message}`)
    }
    actLikeAHuman(s)
  }, gap)
}

function watch(s: Sock): void {
  s.task.on('change', ({ local, op }) => {
    if (local) return
    const t = now()
    if (!s.catchingUp && (op === null || s.task.rev !== s.rev + 1)) stats.gaps++
    s.rev = s.task.rev
    if (op === null) return
    stats.deliveredOp(sentAt(op), t)
  })
  s.task.on('ack', (a) => {
    if (s.plan.role === 'writer' || s.plan.role === undefined || s.plan.role === 'human') stats.acked(now() - s.inflightAt)
    else stats.acks++
    if (!a.noop) acked.push({ taskId: s.plan.taskId, clientId: s.plan.clientId, seq: a.seq, rev: a.rev })
    if (!s.catchingUp && !a.noop && a.rev !== s.rev + 1) stats.gaps++
    s.rev = s.task.rev
    if (s.plan.role !== 'human' && s.plan.role !== 'device') submitNext(s)
  })
  s.task.on('presence', () => stats.presence++)
  s.task.on('conflict', (c) => error(`conflict ${c.kind} ${c.code ?? ''}: ${c.message}`))
  s.client.on('error', (e) => {
    if (!expectLoss) error(`client: ${e.message}`)
  })
  s.client.on('status', (st) => {
    if (st === 'connecting' && stats.running && !expectLoss && !s.catchingUp) error('socket lost, SDK reconnecting')
    if (st === 'connecting' && expectLoss && !s.lostAt) s.lostAt = now()
    if (st === 'syncing' && s.lostAt && !s.resumedAt) s.welcomedAt = now()
    if (st === 'online' && s.lostAt && !s.resumedAt) s.resumedAt = now()
  })
}

async function openOne(plan: SocketPlan): Promise<void> {
  let sock: Sock | undefined
  const client = new TaskSyncClient({
    url: plan.wsUrl.replace(/^ws/, 'http'),
    getAccessToken: async () => plan.token,
    clientId: plan.clientId,
    storage: memoryStorage(),
    WebSocket: routedWebSocket(() => sock) as unknown as WebSocketConstructor,
    fetch: routedFetch,
    // A storm reconnects thousands at once: the first retry within 1 s, at most 4 s apart.
    backoff: { baseMs: 1000, maxMs: 4000 },
    // A device back "after a day" catches up over REST, as after any absence longer than this.
    longAbsenceMs: plan.role === 'device' ? 1000 : undefined,
  })
  await client.connect()
  const task = await client.task(plan.taskId)
  // Loaded is not yet subscribed: ready means ops from here on reach this socket.
  if (client.status !== 'online') await new Promise<void>((r) => client.on('status', (st) => st === 'online' && r()))
  const s: Sock = { plan, client, task, rev: task.rev, inflightAt: 0, lostAt: 0, resumedAt: 0, catchingUp: false, attempts: 0, lastAttemptAt: 0, openedAt: 0, welcomedAt: 0 }
  sock = s
  watch(s)
  sockets.push(s)
}

/** Device: offline, `edits` queued edits; later back online, timed until in sync again. */
async function command(msg: { name: string; [k: string]: unknown }): Promise<unknown> {
  switch (msg.name) {
    case 'offline': {
      for (const s of sockets) if (s.plan.role === 'device') s.client.goOffline()
      for (const s of sockets)
        if (s.plan.role === 'device') {
          s.catchingUp = true
          for (let i = 0; i < Number(msg.edits ?? 1); i++) s.task.submit(nextOp(s))
        }
      return { queued: sockets.filter((s) => s.plan.role === 'device').length }
    }
    case 'online': {
      const devices = sockets.filter((s) => s.plan.role === 'device')
      const t0 = now()
      await Promise.all(
        devices.map(async (s) => {
          s.lostAt = t0
          s.client.goOnline()
          await s.client.whenSynced({ timeoutMs: Number(msg.timeoutMs ?? 120_000) }).catch((e) => error(`whenSynced: ${(e as Error).message}`))
          s.resumedAt = now()
          s.rev = s.task.rev
          s.catchingUp = false
        }),
      )
      return { devices: devices.length, syncedMs: devices.map((s) => s.resumedAt - s.lostAt) }
    }
    case 'route':
      // A storm: clients of a killed instance go to the survivor from now on.
      expectLoss = true
      routes.set(String(msg.from), String(msg.to))
      return { ok: true }
    case 'status': {
      const lost = sockets.filter((s) => s.lostAt)
      return {
        total: sockets.length,
        online: sockets.filter((s) => s.client.status === 'online').length,
        lost: lost.length,
        resumed: lost.filter((s) => s.resumedAt).length,
        resumedMs: lost.filter((s) => s.resumedAt).map((s) => s.resumedAt - Number(msg.since ?? s.lostAt)),
        // Per resumed socket, ms after `since`: its last attempt, that socket's open and welcome; and its attempts.
        phases: lost
          .filter((s) => s.resumedAt)
          .map((s) => {
            const since = Number(msg.since ?? s.lostAt)
            return { attempts: s.attempts, attemptMs: s.lastAttemptAt - since, openMs: s.openedAt - since, welcomeMs: s.welcomedAt - since, onlineMs: s.resumedAt - since }
          }),
      }
    }
  }
  throw new Error(`unknown command ${msg.name}`)
}

serveParent(stats, {
  open: (plans) => openInWaves(plans, openOne),
  startWriters: () => {
    for (const s of sockets) {
      if (s.plan.role === 'human') actLikeAHuman(s)
      else if (s.plan.writer) submitNext(s)
    }
  },
  inFlight: () => sockets.some((s) => s.task.pending > 0),
  views: () =>
    sockets.map((s) => ({ taskId: s.plan.taskId, rev: s.task.rev, hash: contentHash(s.task.snapshot as unknown as Record<string, unknown>) })),
  acked: () => acked,
  command,
  closeAll: () => {
    for (const s of sockets) clearTimeout(s.timer)
    return Promise.all(sockets.map((s) => s.client.close())).then(() => {})
  },
  get count() {
    return sockets.length
  },
})
