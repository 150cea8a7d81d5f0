/**
 * Load generator worker: drives a slice of the scenario's sockets over the raw
 * wire protocol (PROTOCOL.md section 3) and reports counts, latency histograms
 * and each socket's final view of its task. Started by load/run.ts.
 */
import { performance } from 'node:perf_hooks'
import WebSocket from 'ws'
import { taskType } from '../src/domain/index.js'
import type { TaskContent, TaskOp } from '../src/domain/types.js'
import { Histogram } from './histogram.js'
import { openInWaves } from './waves.js'
import { contentHash } from './canonical.js'

export interface SocketPlan {
  wsUrl: string
  token: string
  taskId: string
  clientId: string
  writer: boolean
}

type FromParent =
  | { type: 'init'; sockets: SocketPlan[] }
  | { type: 'start' }
  | { type: 'measure' }
  | { type: 'stop' }

const now = () => performance.timeOrigin + performance.now()
const send = (m: unknown) => process.send!(m)

interface Sock {
  plan: SocketPlan
  ws: WebSocket
  content: TaskContent
  rev: number
  seq: number
  inflightAt: number
  inflightOp: TaskOp | null
  subscribed: boolean
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

function nextOp(s: Sock): TaskOp {
  const len = [...s.content.title].length
  const pos = Math.floor(Math.random() * (len + 1))
  const title = len < 40 ? (pos > 0 ? [pos, 'x'] : ['x']) : pos < len ? (pos > 0 ? [pos, { d: 1 }] : [{ d: 1 }]) : [{ d: 1 }]
  return { title, customFields: { lt: { set: now() } } } as TaskOp
}

function sendNext(s: Sock): void {
  if (!running || s.inflightOp) return
  const op = nextOp(s)
  s.seq++
  s.inflightOp = op
  s.inflightAt = now()
  s.ws.send(JSON.stringify({ type: 'op', taskId: s.plan.taskId, baseRev: s.rev, seq: s.seq, op }))
}

function onMessage(s: Sock, raw: WebSocket.RawData, ready: () => void): void {
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
      const t = now()
      if (measuring) ackHist.record(t - s.inflightAt)
      acks++
      if (s.inflightOp && m.rev === s.rev + 1) s.content = taskType.apply(s.content, s.inflightOp)
      s.rev = m.rev
      s.inflightOp = null
      sendNext(s)
      break
    }
    case 'op': {
      const t = now()
      delivered++
      if (m.rev !== s.rev + 1) gaps++
      else {
        s.content = taskType.apply(s.content, m.op)
        s.rev = m.rev
      }
      const sent = m.op?.customFields?.lt?.set
      if (measuring && typeof sent === 'number') fanoutHist.record(t - sent)
      break
    }
    case 'error':
      errors++
      if (errorSamples.length < 5) errorSamples.push(`${m.code}: ${m.message}`)
      if (s.inflightOp && m.code !== 'rate_limited') {
        s.inflightOp = null
        s.seq++
      }
      break
  }
}

async function openAll(plans: SocketPlan[]): Promise<void> {
  const openOne = (plan: SocketPlan) =>
    new Promise<void>((resolve, reject) => {
      const ws = new WebSocket(`${plan.wsUrl}/ws`, { headers: { authorization: `Bearer ${plan.token}` }, perMessageDeflate: false })
      const s: Sock = { plan, ws, content: taskType.create(), rev: 0, seq: 0, inflightAt: 0, inflightOp: null, subscribed: false }
      sockets.push(s)
      ws.on('open', () => ws.send(JSON.stringify({ type: 'hello', clientId: plan.clientId })))
      ws.on('message', (raw) => onMessage(s, raw, resolve))
      ws.on('error', reject)
      ws.on('close', (code) => {
        if (running) {
          errors++
          if (errorSamples.length < 5) errorSamples.push(`socket closed ${code}`)
        }
      })
    })
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
    for (const s of sockets) if (s.plan.writer) sendNext(s)
    const timer = setInterval(() => send({ type: 'progress', acks, delivered }), 1000)
    timer.unref()
  } else if (msg.type === 'measure') {
    measuring = true
  } else if (msg.type === 'stop') {
    running = false
    measuring = false
    // Let in-flight ops be acked and delivered.
    const deadline = Date.now() + 10_000
    while (Date.now() < deadline && sockets.some((s) => s.inflightOp)) await new Promise((r) => setTimeout(r, 50))
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
        rev: s.rev,
        hash: contentHash(s.content as unknown as Record<string, unknown>),
      })),
    })
    for (const s of sockets) s.ws.close(1000)
    setTimeout(() => process.exit(0), 500).unref()
  }
})
