/**
 * Load generator worker for the ShareDB peer (`--peer sharedb`): the same
 * workload as load/worker.ts through ShareDB's own client (one Connection per
 * socket, json0 ops on a doc `{ title, lt_<writer> }`): per task one writer keeps one op
 * in flight (a title insert, or a delete once it is 40 long, plus `lt_<writer>` set to
 * the send time), the others subscribe. Same IPC and result shape as the
 * tasksync workers. A gap is a remote op batch after which the doc's version is
 * not the previous one + 1.
 */
import { createRequire } from 'node:module'
import WebSocket from 'ws'
import { openInWaves } from './waves.js'
import { contentHash } from './canonical.js'
import type { SocketPlan } from './worker.js'
import { WorkerStats, now, random, serveParent } from './worker-loop.js'

// ShareDB lives in load/peers/sharedb/node_modules, never in the product's dependencies.
const peerRequire = createRequire(new URL('./peers/sharedb/package.json', import.meta.url))
const { Connection } = peerRequire('sharedb/lib/client') as { Connection: new (socket: unknown) => any }
const PeerWebSocket = peerRequire('ws') as typeof WebSocket

export const SHAREDB_COLLECTION = 'tasks'

interface Sock {
  plan: SocketPlan
  conn: any
  doc: any
  version: number
  inflightAt: number
  inflight: boolean
}

const sockets: Sock[] = []
const stats = new WorkerStats()

function nextOp(s: Sock): unknown[] {
  const title: string = s.doc.data.title
  const len = title.length
  const pos = Math.floor(random() * (len + 1))
  const edit = len < 40 ? { p: ['title', pos], si: 'x' } : { p: ['title', Math.min(pos, len - 1)], sd: title[Math.min(pos, len - 1)] }
  // The send time in a field of this writer's own (as in load/sdk-worker.ts): concurrent replaces of one field on a hot doc keep one.
  const key = `lt_${s.plan.clientId.slice(0, 8)}`
  return [edit, key in s.doc.data ? { p: [key], od: s.doc.data[key], oi: now() } : { p: [key], oi: now() }]
}

function submitNext(s: Sock): void {
  if (!stats.running || s.inflight) return
  s.inflight = true
  s.inflightAt = now()
  s.doc.submitOp(nextOp(s), (err: Error | null) => {
    s.inflight = false
    if (err) stats.error(`submit: ${err.message}`)
    else {
      stats.acked(now() - s.inflightAt)
      if (s.doc.version !== s.version + 1) stats.gaps++
    }
    s.version = s.doc.version
    submitNext(s)
  })
}

async function openOne(plan: SocketPlan): Promise<void> {
  const socket = new PeerWebSocket(plan.wsUrl, { perMessageDeflate: false })
  const conn = new Connection(socket)
  const doc = conn.get(SHAREDB_COLLECTION, plan.taskId)
  await new Promise<void>((resolve, reject) => doc.subscribe((err: Error | null) => (err ? reject(err) : resolve())))
  const s: Sock = { plan, conn, doc, version: doc.version, inflightAt: 0, inflight: false }
  doc.on('op batch', (op: { p: unknown[]; oi?: unknown }[], source: unknown) => {
    if (source) return
    const t = now()
    if (doc.version !== s.version + 1) stats.gaps++
    s.version = doc.version
    stats.deliveredOp(op.find((c) => String(c.p[0]).startsWith('lt'))?.oi, t)
  })
  doc.on('error', (err: Error) => stats.error(`doc: ${err.message}`))
  conn.on('error', (err: Error) => stats.error(`connection: ${err.message}`))
  sockets.push(s)
}

serveParent(stats, {
  open: (plans) => openInWaves(plans, openOne),
  startWriters: () => {
    for (const s of sockets) if (s.plan.writer) submitNext(s)
  },
  inFlight: () => sockets.some((s) => s.inflight),
  views: () => sockets.map((s) => ({ taskId: s.plan.taskId, rev: s.doc.version, hash: contentHash(s.doc.data) })),
  closeAll: () => {
    for (const s of sockets) s.conn.close()
  },
  get count() {
    return sockets.length
  },
})
