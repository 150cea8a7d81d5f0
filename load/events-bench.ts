/**
 * Events out under the real-time load: the load scenario (load/run.ts, default
 * 100 tasks × 10 sockets) run side by side without and with one webhook endpoint
 * subscribed to every event ('*'), alternating, so the box's drift hits both alike.
 * The endpoint is a receiver in this process that verifies every delivery with the
 * Standard Webhooks library and times commit → delivery (the event's `at`, taken
 * just before its commit statement, to the arrival here; one clock). The outbox
 * backlog is sampled from /metrics every 2 s during both runs of a pair. Not more
 * often: the outbox figures behind a scrape count every delivery row (tens of ms of
 * PostgreSQL per scrape after ~40,000 deliveries), a cost only the run with the
 * endpoint pays and that grows with the run; at 500 ms it was part of the drop.
 *
 *   npx tsx load/events-bench.ts --pairs 2 --duration 20
 */
import { spawn } from 'node:child_process'
import { createServer } from 'node:http'
import { createHmac, createSecretKey, randomBytes } from 'node:crypto'
import { readFileSync, mkdirSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { loadavg } from 'node:os'
import type { AddressInfo } from 'node:net'
import { Webhook } from 'standardwebhooks'
import { Histogram } from './histogram.js'
import { freePort } from './services.js'

const { values: args } = parseArgs({
  args: process.argv.slice(2).filter((a) => a !== '--'),
  options: {
    pairs: { type: 'string', default: '2' },
    duration: { type: 'string', default: '20' },
    tasks: { type: 'string', default: '100' },
    'sockets-per-task': { type: 'string', default: '10' },
  },
})
const log = (...a: unknown[]) => console.log(`[events-bench ${new Date().toISOString().slice(11, 19)}]`, ...a)

const secret = `whsec_${randomBytes(24).toString('base64')}`
const verifier = new Webhook(secret)
// The receiver is the bench's instrument, on the same two cores as the server only because the bench is:
// it verifies every signature with node:crypto's native HMAC (the Standard Webhooks scheme, as the
// library computes it: test/events/sign.test.ts checks the two agree), and the library's own JavaScript
// SHA-256 on one delivery in 50, so its CPU per event stays small beside the server's.
const hmacKey = createSecretKey(Buffer.from(secret.slice('whsec_'.length), 'base64'))
function verifyNative(body: string, headers: Record<string, string | string[] | undefined>): void {
  const id = String(headers['webhook-id'])
  const ts = String(headers['webhook-timestamp'])
  if (Math.abs(Date.now() / 1000 - Number(ts)) > 300) throw new Error('timestamp out of tolerance')
  const expected = createHmac('sha256', hmacKey).update(`${id}.${ts}.`).update(body).digest('base64')
  const ok = String(headers['webhook-signature']).split(' ').some((sig) => sig.length === expected.length + 3 && sig.startsWith('v1,') && sig.endsWith(expected))
  if (!ok) throw new Error('no matching signature')
}
/** The payload's `timestamp` (the event's `at`, Standard Webhooks' first two keys), read without parsing the body. */
function eventAt(body: string): number {
  const k = body.indexOf('"timestamp":"')
  if (k < 0) throw new Error('no timestamp in the payload')
  return Date.parse(body.slice(k + 13, body.indexOf('"', k + 13)))
}
let received = 0
let latency = new Histogram()
/** commit→delivery by 5 s of the run (from its start, by arrival): where in the run the tail is. */
let windows = new Map<number, Histogram>()
let runStart = 0
let seen = new Set<string>()
let duplicates = 0
let forged = 0
// Lean on purpose (it shares the server's cores): the body is not parsed — the event id is the
// signed webhook-id header (the dispatcher sends the event's id there), the time its `timestamp`.
const receiver = createServer((req, res) => {
  const chunks: Buffer[] = []
  req.on('data', (c: Buffer) => chunks.push(c))
  req.on('end', () => {
    const arrived = Date.now()
    try {
      const body = chunks.length === 1 ? chunks[0].toString('utf8') : Buffer.concat(chunks).toString('utf8')
      if (received++ % 50 === 0) {
        const event = verifier.verify(body, req.headers as Record<string, string>) as { data: { id: string } }
        if (event.data.id !== req.headers['webhook-id']) throw new Error('webhook-id is not the event id')
      } else verifyNative(body, req.headers)
      const id = String(req.headers['webhook-id'])
      if (seen.has(id)) duplicates++
      seen.add(id)
      const ms = Math.max(0, arrived - eventAt(body))
      latency.record(ms)
      const w = Math.floor((arrived - runStart) / 5000)
      let h = windows.get(w)
      if (!h) windows.set(w, (h = new Histogram()))
      h.record(ms)
    } catch {
      forged++
    }
    res.writeHead(204).end()
  })
})
await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve))
const hookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`

// The server's port, scraped for /metrics: a free one, so two benches on the box do not collide.
const serverPort = await freePort()

/** The dispatcher's counters at the last scrape (servers that have them). */
let dispatch: Record<string, number> = {}
async function backlog(): Promise<number | null> {
  try {
    const text = await (await fetch(`http://127.0.0.1:${serverPort}/metrics`)).text()
    for (const m of text.matchAll(/^tasksync_(events_rounds|events_round_seconds|events_claimed|webhook_attempts|webhook_attempt_seconds)_total\{?[^} ]*\}? ([\d.e+]+)/gm)) dispatch[m[1]] = Number(m[2])
    const m = /^tasksync_events_pending\{[^}]*\} (\d+)/m.exec(text)
    return m ? Number(m[1]) : null
  } catch {
    return null
  }
}

interface RunResult {
  committedOpsPerS: number
  committedOps: number
  ackMs: { p99: number }
  /** Core-seconds of the measured window per group (load/cpu.ts). */
  cpu: { server: number; postgres: number; generator: number; perOpMs: { server: number; postgres: number } }
}

async function runLoad(withEndpoint: boolean, i: number): Promise<RunResult & { backlogMax?: number; backlogLast?: number; receiverCpuS: number }> {
  mkdirSync('load/results', { recursive: true })
  const out = `load/results/events-bench-${withEndpoint ? 'hook' : 'base'}-${i}`
  const env = { ...process.env, WEBHOOK_ALLOW_PRIVATE: 'true', LOAD_PORT_BASE: String(serverPort), ...(withEndpoint ? { LOAD_WEBHOOK_URL: hookUrl, LOAD_WEBHOOK_SECRET: secret } : {}) }
  const child = spawn(process.execPath, ['--import', 'tsx', 'load/run.ts', '--tasks', args.tasks!, '--sockets-per-task', args['sockets-per-task']!, '--duration', args.duration!, '--out', out], {
    env,
    stdio: ['ignore', 'ignore', 'inherit'],
  })
  const samples: number[] = []
  dispatch = {}
  const timer = setInterval(() => void backlog().then((n) => n !== null && samples.push(n)), 2000)
  // This process's CPU over the whole run (start-up and drain included): the receiver's share, with the endpoint.
  const cpuBefore = process.cpuUsage()
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve))
  clearInterval(timer)
  const cpuSpent = process.cpuUsage(cpuBefore)
  if (code !== 0) throw new Error(`load/run.ts exited ${code}`)
  const r = (JSON.parse(readFileSync(`${out}/results.json`, 'utf8')) as { results: RunResult[] }).results[0]
  return { ...r, backlogMax: samples.length ? Math.max(...samples) : undefined, backlogLast: samples.at(-1), receiverCpuS: (cpuSpent.user + cpuSpent.system) / 1e6 }
}

const rows: string[] = []
const drops: number[] = []
const costs: Array<{ server: number; postgres: number; receiver: number }> = []
let seenCount = 0
const all = new Histogram()
for (let i = 0; i < Number(args.pairs); i++) {
  const order = i % 2 === 0 ? [false, true] : [true, false]
  const pair: Record<string, Awaited<ReturnType<typeof runLoad>>> = {}
  for (const hook of order) {
    latency = new Histogram()
    windows = new Map()
    runStart = Date.now()
    seen = new Set()
    duplicates = 0
    forged = 0
    log(`pair ${i + 1}: ${hook ? 'with the endpoint' : 'without'}; load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`)
    pair[hook ? 'hook' : 'base'] = await runLoad(hook, i)
    if (hook) {
      seenCount = seen.size
      all.merge(latency)
      rows.push(
        `pair ${i + 1} with endpoint: ${Math.round(pair.hook.committedOpsPerS)} ops/s; ${seen.size} events delivered (${duplicates} duplicates, ${forged} failed verification); ` +
          `commit→delivery ms p50 ${latency.percentile(50).toFixed(1)} p99 ${latency.percentile(99).toFixed(1)} max ${latency.percentile(100).toFixed(0)}; ` +
          `backlog max ${pair.hook.backlogMax} last ${pair.hook.backlogLast}` +
          `; p99 by 5 s of the run (from its start) ${[...windows].sort((a, b) => a[0] - b[0]).map(([, h]) => h.percentile(99).toFixed(0)).join(' / ')} ms` +
          (dispatch.events_rounds ? `; dispatcher ${dispatch.events_rounds} rounds, ${((dispatch.events_round_seconds * 1000) / dispatch.events_rounds).toFixed(1)} ms mean, ${dispatch.webhook_attempts} attempts, ${((dispatch.webhook_attempt_seconds * 1000) / dispatch.webhook_attempts).toFixed(1)} ms mean` : ''),
      )
    }
  }
  const drop = (1 - pair.hook.committedOpsPerS / pair.base.committedOpsPerS) * 100
  drops.push(drop)
  rows.push(`pair ${i + 1}: without ${Math.round(pair.base.committedOpsPerS)} ops/s, with ${Math.round(pair.hook.committedOpsPerS)} ops/s: ${drop.toFixed(1)} % drop; ack p99 ${pair.base.ackMs.p99.toFixed(1)} → ${pair.hook.ackMs.p99.toFixed(1)} ms`)
  // What an event costs, per committed op of the measured window (about one event per op): the
  // server's and PostgreSQL's core-ms per op with the endpoint minus without; the receiver's
  // (this process) over the whole run per delivered event.
  const perOp = (r: RunResult) => r.cpu.perOpMs
  const extra = (k: 'server' | 'postgres') => ((perOp(pair.hook)[k] - perOp(pair.base)[k]) * 1000).toFixed(0)
  const recvUs = seenCount > 0 ? ((pair.hook.receiverCpuS - pair.base.receiverCpuS) / seenCount) * 1e6 : NaN
  costs.push({ server: Number(extra('server')), postgres: Number(extra('postgres')), receiver: recvUs })
  rows.push(
    `pair ${i + 1} CPU per committed op, without → with: server ${(perOp(pair.base).server * 1000).toFixed(0)} → ${(perOp(pair.hook).server * 1000).toFixed(0)} µs (+${extra('server')}), ` +
      `PostgreSQL ${(perOp(pair.base).postgres * 1000).toFixed(0)} → ${(perOp(pair.hook).postgres * 1000).toFixed(0)} µs (+${extra('postgres')}); receiver ${recvUs.toFixed(0)} µs per delivered event`,
  )
}
console.log('\n== events bench ==')
console.log(`load average at end ${loadavg().map((l) => l.toFixed(2)).join(' ')}; cwd ${process.cwd()}`)
for (const r of rows) console.log(r)
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]
console.log(`all runs with the endpoint: commit→delivery ms p50 ${all.percentile(50).toFixed(1)} p99 ${all.percentile(99).toFixed(1)}; mean drop ${(drops.reduce((a, b) => a + b, 0) / drops.length).toFixed(1)} %`)
console.log(`median extra CPU per committed op: server ${median(costs.map((c) => c.server))} µs, PostgreSQL ${median(costs.map((c) => c.postgres))} µs; receiver ${median(costs.map((c) => c.receiver)).toFixed(0)} µs per delivered event`)
receiver.close()
process.exit(0)
