/**
 * Micro-benchmark of one SDK client's side of the `hot` scenario, without
 * network or server: a TaskSyncClient (memory storage, a scripted socket) on a
 * task written by `--writers` clients, each keeping one op in flight. Per own
 * op the client receives the other writers' committed ops (`--writers` − 1
 * frames), then the ack of its own; each frame is the JSON the server sends.
 * The op is the load generator's (load/sdk-worker.ts): a one-character title
 * edit plus a time stamp in the writer's own custom field, and the listeners
 * are the generator's too (rev check, fan-out sample).
 *
 * Prints the CPU cost per received frame (µs), the figure that bounds `hot`
 * on a small box: every committed op is received by every writer.
 *
 *   npx tsx load/sdk-recv-bench.ts [--writers 50] [--cycles 2000] [--batch 1] [--rounds 5]
 *
 * `--batch` frames are delivered per macrotask (what one socket read carries);
 * storage writes and other promise chains run between batches, as they do live.
 */
import { parseArgs } from 'node:util'
import { randomUUID } from 'node:crypto'
import { TaskSyncClient, memoryStorage, type TaskHandle, type WebSocketLike } from '../src/client/index.js'
import { taskType } from '../src/domain/index.js'
import type { TaskContent, TaskOp } from '../src/domain/types.js'
import { canonical } from './canonical.js'

const { values: args } = parseArgs({
  options: {
    writers: { type: 'string', default: '50' },
    cycles: { type: 'string', default: '2000' },
    batch: { type: 'string', default: '1' },
    rounds: { type: 'string', default: '5' },
  },
})
const WRITERS = Number(args.writers)
const CYCLES = Number(args.cycles)
const BATCH = Number(args.batch)
const ROUNDS = Number(args.rounds)
const TASK = '11111111-1111-4111-8111-111111111111'
const USER = '33333333-3333-4333-8333-333333333333'

// mulberry32: the same edits every run
let seed = 42
const random = () => {
  seed = (seed + 0x6d2b79f5) >>> 0
  let t = seed
  t = Math.imul(t ^ (t >>> 15), t | 1)
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

/** The generator's op on a title of `len` code points, stamped in `field`. */
function genOp(len: number, field: string): TaskOp {
  const pos = Math.floor(random() * (len + 1))
  const title = len < 40 ? (pos > 0 ? [pos, 'x'] : ['x']) : pos < len ? (pos > 0 ? [pos, { d: 1 }] : [{ d: 1 }]) : [{ d: 1 }]
  return { title, customFields: { [field]: { set: performance.timeOrigin + performance.now() } } } as TaskOp
}

class Sock implements WebSocketLike {
  readyState = 0
  onopen: ((ev: unknown) => void) | null = null
  onmessage: ((ev: { data: unknown }) => void) | null = null
  onclose: ((ev: { code: number; reason?: string }) => void) | null = null
  onerror: ((ev: unknown) => void) | null = null
  readonly sent: Record<string, unknown>[] = []
  static last: Sock
  constructor(readonly url: string) {
    Sock.last = this
    setImmediate(() => {
      this.readyState = 1
      this.onopen?.({})
    })
  }
  send(data: string): void {
    this.sent.push(JSON.parse(data))
  }
  close(): void {
    this.readyState = 3
  }
  receive(frame: string): void {
    this.onmessage?.({ data: frame })
  }
}

const tick = () => new Promise<void>((r) => setImmediate(r))
async function until(pred: () => boolean): Promise<void> {
  for (let i = 0; !pred(); i++) {
    if (i > 10_000) throw new Error('timed out')
    await tick()
  }
}

async function round(): Promise<{ usPerFrame: number; frames: number; converged: boolean }> {
  const client = new TaskSyncClient({
    url: 'http://bench.test',
    getAccessToken: async () => 'header.e30.signature',
    clientId: randomUUID(),
    storage: memoryStorage(),
    WebSocket: Sock,
    fetch: async () => new Response('{}', { status: 404 }),
  })
  await client.connect()
  await until(() => Sock.last?.readyState === 1 && Sock.last.sent.length > 0)
  const sock = Sock.last
  sock.receive(JSON.stringify({ type: 'welcome', sessionId: 's', instanceId: 'i', serverTime: new Date().toISOString(), heartbeatMs: 25_000 }))
  const others = Array.from({ length: WRITERS - 1 }, () => randomUUID())
  const fields = others.map((id) => `lt_${id.slice(0, 8)}`)
  // The server's copy, its log of committed ops (for transforming the client's op), its rev.
  let server: TaskContent = { ...taskType.create(), title: 'x'.repeat(20), customFields: Object.fromEntries(fields.map((f) => [f, 0])) }
  let rev = 100
  const log = new Map<number, TaskOp>()
  const opened = client.task(TASK)
  await until(() => sock.sent.some((m) => m.type === 'subscribe'))
  const at = new Date().toISOString()
  sock.receive(
    JSON.stringify({
      type: 'snapshot',
      taskId: TASK,
      rev,
      task: { ...server, id: TASK, rev, clock: {}, createdAt: at, updatedAt: at, updatedBy: USER },
    }),
  )
  sock.receive(JSON.stringify({ type: 'subscribed', taskIds: [TASK], projectIds: [], all: false }))
  const task: TaskHandle = await opened
  const own = `lt_${client.clientId.slice(0, 8)}`

  // The generator's listeners (load/sdk-worker.ts).
  let seenRev = task.rev
  let gaps = 0
  let samples = 0
  let running = true
  const submit = () => {
    if (!running || task.pending > 0) return
    task.submit(genOp([...task.snapshot.title].length, own))
  }
  task.on('change', ({ local, op }) => {
    if (local) return
    if (op === null || task.rev !== seenRev + 1) gaps++
    seenRev = task.rev
    const cf = op?.customFields as Record<string, { set?: unknown }> | undefined
    for (const k in cf) if (k.startsWith('lt') && typeof cf[k]?.set === 'number') samples++
  })
  task.on('ack', (a) => {
    if (a.rev !== seenRev + 1) gaps++
    seenRev = task.rev
    submit()
  })

  const frames: string[] = []
  let received = 0
  let spent = 0
  const deliver = async () => {
    const c0 = process.cpuUsage()
    for (let i = 0; i < frames.length; i += BATCH) {
      for (const f of frames.slice(i, i + BATCH)) sock.receive(f)
      received += Math.min(BATCH, frames.length - i)
      await tick()
    }
    frames.length = 0
    const d = process.cpuUsage(c0)
    spent += d.user + d.system
  }
  const commitRemote = (k: number) => {
    const op = genOp([...server.title].length, fields[k])
    server = taskType.apply(server, op)
    log.set(++rev, op)
    frames.push(JSON.stringify({ type: 'op', taskId: TASK, rev, op, userId: USER, deviceId: 'dev', clientId: others[k], seq: rev, at: new Date().toISOString() }))
  }

  submit()
  for (let c = 0; c < CYCLES; c++) {
    await until(() => sock.sent.some((m) => m.type === 'op'))
    const sent = sock.sent.splice(0).filter((m) => m.type === 'op') as { seq: number; baseRev: number; op: TaskOp }[]
    if (sent.length !== 1) throw new Error(`cycle ${c}: expected one op sent, got ${sent.length}`)
    for (let k = 0; k < others.length; k++) commitRemote(k)
    await deliver()
    // The server commits the client's op after the others: transformed past what it did not see.
    let op = taskType.normalize(sent[0].op)
    for (let r = sent[0].baseRev + 1; r <= rev; r++) op = taskType.transform(op, log.get(r)!, 'left')
    server = taskType.apply(server, op)
    log.set(++rev, op)
    log.delete(rev - 200)
    if (c === CYCLES - 1) running = false
    frames.push(JSON.stringify({ type: 'ack', taskId: TASK, seq: sent[0].seq, rev }))
    await deliver()
  }
  running = false
  const { id: _i, rev: _r, clock: _c, createdAt: _a, updatedAt: _u, updatedBy: _b, ...content } = task.snapshot
  const converged = task.rev === rev && canonical(content) === canonical(server) && gaps === 0
  if (!converged) console.log({ rev, taskRev: task.rev, gaps, a: canonical(content).slice(-300), b: canonical(server).slice(-300) })
  if (samples < received - CYCLES) throw new Error(`fan-out samples ${samples} < remote ops ${received - CYCLES}`)
  await client.close()
  return { usPerFrame: spent / received, frames: received, converged }
}

console.log(`hot receive path of one SDK client: ${WRITERS} writers, ${CYCLES} own ops per round, ${BATCH} frame(s) per macrotask (node ${process.version})`)
await round() // warm-up
const results: number[] = []
for (let i = 0; i < ROUNDS; i++) {
  const r = await round()
  results.push(r.usPerFrame)
  console.log(`round ${i + 1}: ${r.usPerFrame.toFixed(2)} µs CPU per received frame (${r.frames} frames), converged ${r.converged}`)
  if (!r.converged) process.exitCode = 1
}
const sorted = [...results].sort((a, b) => a - b)
console.log(`median ${sorted[Math.floor(sorted.length / 2)].toFixed(2)} µs per frame → one core applies ${Math.round(1e6 / sorted[Math.floor(sorted.length / 2)]).toLocaleString('en-US')} frames/s`)
