/**
 * Load generator worker: drives a slice of the scenario's sockets over the raw
 * wire protocol (PROTOCOL.md section 3) and reports counts, latency histograms
 * and each socket's final view of its task. Started by load/run.ts.
 */
import { taskType } from '../src/domain/index.js'
import type { TaskContent, TaskOp } from '../src/domain/types.js'
import { codePoints } from '../src/domain/values.js'
import { applyOp } from './fast-apply.js'
import { RawWs } from './raw-ws.js'
import { openInWaves } from './waves.js'
import { contentHash } from './canonical.js'
import { WorkerStats, now, random, serveParent, type Acked } from './worker-loop.js'

export interface SocketPlan {
  wsUrl: string
  token: string
  taskId: string
  clientId: string
  writer: boolean
  /** SDK worker only: what the client does (default: writer if `writer`, else subscriber). */
  role?: 'writer' | 'subscriber' | 'human' | 'device'
  /** A human's actions per minute (mixed). */
  actionsPerMin?: number
}

interface Sock {
  plan: SocketPlan
  ws: RawWs
  content: TaskContent
  rev: number
  seq: number
  inflightAt: number
  inflightOp: TaskOp | null
  /** The in-flight op's frame, resent after a `rate_limited` refusal. */
  inflightFrame: string
  subscribed: boolean
}

const sockets: Sock[] = []
const acked: Acked[] = []
const stats = new WorkerStats()

function nextOp(s: Sock): TaskOp {
  const len = codePoints(s.content.title)
  const pos = Math.floor(random() * (len + 1))
  const title = len < 40 ? (pos > 0 ? [pos, 'x'] : ['x']) : pos < len ? (pos > 0 ? [pos, { d: 1 }] : [{ d: 1 }]) : [{ d: 1 }]
  return { title, customFields: { lt: { set: now() } } } as TaskOp
}

function sendNext(s: Sock): void {
  if (!stats.running || s.inflightOp) return
  const op = nextOp(s)
  s.seq++
  s.inflightOp = op
  s.inflightAt = now()
  s.inflightFrame = JSON.stringify({ type: 'op', taskId: s.plan.taskId, baseRev: s.rev, seq: s.seq, op })
  s.ws.send(s.inflightFrame)
}

function onMessage(s: Sock, raw: Buffer, ready: () => void): void {
  const m = JSON.parse(raw.toString())
  switch (m.type) {
    case 'welcome':
      s.ws.send(JSON.stringify({ type: 'subscribe', taskIds: [s.plan.taskId] }))
      break
    case 'snapshot': {
      const { id, rev, clock, createdAt, updatedAt, updatedBy, ...content } = m.task
      void id, clock, createdAt, updatedAt, updatedBy
      s.content = content as TaskContent
      s.rev = m.rev
      break
    }
    case 'subscribed':
      if (!s.subscribed) {
        s.subscribed = true
        ready()
      }
      break
    case 'ack': {
      stats.acked(now() - s.inflightAt)
      if (!m.noop && typeof m.rev === 'number') acked.push({ taskId: s.plan.taskId, clientId: s.plan.clientId, seq: m.seq, rev: m.rev })
      if (s.inflightOp && m.rev === s.rev + 1) s.content = applyOp(s.content, s.inflightOp)
      s.rev = m.rev
      s.inflightOp = null
      sendNext(s)
      break
    }
    case 'op': {
      const t = now()
      if (m.rev !== s.rev + 1) stats.gaps++
      else {
        s.content = applyOp(s.content, m.op)
        s.rev = m.rev
      }
      stats.deliveredOp(m.op?.customFields?.lt?.set, t)
      break
    }
    case 'error':
      stats.error(`${m.code}: ${m.message}`)
      if (!s.inflightOp || (m.seq !== undefined && m.seq !== s.seq)) break
      if (m.code === 'rate_limited') {
        // Refused before anything was done: the same frame again, a little later.
        setTimeout(() => s.inflightOp && s.ws.send(s.inflightFrame), 50)
        break
      }
      // Refused for good: the writer goes on with its next op.
      s.inflightOp = null
      sendNext(s)
      break
  }
}

async function openAll(plans: SocketPlan[]): Promise<void> {
  const openOne = async (plan: SocketPlan) => {
    const ws = await RawWs.open(`${plan.wsUrl}/ws`, { headers: { authorization: `Bearer ${plan.token}` } })
    const s: Sock = { plan, ws, content: taskType.create(), rev: 0, seq: 0, inflightAt: 0, inflightOp: null, inflightFrame: '', subscribed: false }
    sockets.push(s)
    await new Promise<void>((resolve, reject) => {
      ws.onMessage = (raw) => onMessage(s, raw, resolve)
      ws.onClose = (code) => {
        if (stats.running) stats.error(`socket closed ${code}`)
        reject(new Error(`socket closed ${code} before it was subscribed`))
      }
      ws.send(JSON.stringify({ type: 'hello', clientId: plan.clientId }))
    })
  }
  await openInWaves(plans, openOne)
}

serveParent(stats, {
  open: openAll,
  startWriters: () => {
    for (const s of sockets) if (s.plan.writer) sendNext(s)
  },
  inFlight: () => sockets.some((s) => s.inflightOp),
  acked: () => acked,
  views: () => sockets.map((s) => ({ taskId: s.plan.taskId, rev: s.rev, hash: contentHash(s.content as unknown as Record<string, unknown>) })),
  closeAll: () => {
    for (const s of sockets) s.ws.close(1000)
  },
  get count() {
    return sockets.length
  },
})
