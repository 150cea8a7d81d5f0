/**
 * What one delivered event costs the box, without the real-time load around it:
 * the built server of the current directory (so an A/B runs the same script from
 * two worktrees), a fresh database, one endpoint subscribed to every event, and
 * events written straight into the outbox at a steady rate over 100 tasks (as the
 * load's commits would, without their sockets). Measured from the first event to
 * the last delivery: the server process's CPU, the CPU of the PostgreSQL backends
 * serving it (the bench's own writer excluded) and this process's (the receiver,
 * which verifies every signature with node:crypto's HMAC), each per delivered event.
 * CPU time, not throughput, so a loaded box blurs it far less than the load's ops/s.
 *
 *   npx tsx /path/to/load/events-cost-bench.ts --rate 1500 --seconds 15 --rounds 3
 */
import { createServer } from 'node:http'
import { createHmac, createSecretKey, randomBytes, randomUUID } from 'node:crypto'
import { parseArgs } from 'node:util'
import { loadavg } from 'node:os'
import { pathToFileURL } from 'node:url'
import type { AddressInfo } from 'node:net'
import postgres from 'postgres'
import { cpuSeconds } from './proc.js'

const { values: args } = parseArgs({
  args: process.argv.slice(2).filter((a) => a !== '--'),
  options: {
    rate: { type: 'string', default: '1500' },
    seconds: { type: 'string', default: '15' },
    rounds: { type: 'string', default: '3' },
    tasks: { type: 'string', default: '100' },
    'pg-url': { type: 'string', default: process.env.LOAD_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres' },
  },
})
const log = (...a: unknown[]) => console.log(`[events-cost ${new Date().toISOString().slice(11, 19)}]`, ...a)
// The server under test is the one of the current directory.
const services = (await import(pathToFileURL(`${process.cwd()}/load/services.ts`).href)) as typeof import('./services.js')

const secret = `whsec_${randomBytes(24).toString('base64')}`
const hmacKey = createSecretKey(Buffer.from(secret.slice('whsec_'.length), 'base64'))
let received = 0
let forged = 0
const seen = new Set<string>()
// Lean (it is the instrument): the signature is checked on every delivery, the body is not parsed
// (the event id is the signed webhook-id header).
const receiver = createServer((req, res) => {
  const chunks: Buffer[] = []
  req.on('data', (c: Buffer) => chunks.push(c))
  req.on('end', () => {
    const body = chunks.length === 1 ? chunks[0].toString('utf8') : Buffer.concat(chunks).toString('utf8')
    const id = String(req.headers['webhook-id'])
    const expected = createHmac('sha256', hmacKey).update(`${id}.${String(req.headers['webhook-timestamp'])}.`).update(body).digest('base64')
    if (String(req.headers['webhook-signature']) === `v1,${expected}`) {
      received++
      seen.add(id)
    } else forged++
    res.writeHead(204).end()
  })
})
await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve))
const hookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`

services.ensureBuilt()
const redis = await services.startRedis(undefined)
const admin = postgres(args['pg-url']!, { max: 1, onnotice: () => {} })
process.env.WEBHOOK_ALLOW_PRIVATE = 'true'
// Commits ring the dispatcher at once under the real load; here a short poll stands in for the doorbell.
process.env.EVENT_POLL_MS = '10'

const rows: string[] = []
const figures: Array<{ server: number; postgres: number; receiver: number }> = []
for (let round = 1; round <= Number(args.rounds); round++) {
  const sut = await services.startTasksync(admin, args['pg-url']!, { instances: 1, redisUrl: redis.url, poolSize: '10', server: 'dist' })
  try {
    const url = sut.instances[0].url
    const reg = await (await fetch(`${url}/api/auth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ orgName: 'cost', email: `cost-${randomUUID()}@example.test`, password: 'cost-password-123', displayName: 'Cost', device: { name: 'bench', platform: 'node' } }),
    })).json() as { accessToken: string; organization: { id: string }; user: { id: string } }
    const hook = await fetch(`${url}/api/webhooks`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${reg.accessToken}` }, body: JSON.stringify({ url: hookUrl, events: ['*'], secret }) })
    if (hook.status !== 201) throw new Error(`POST /api/webhooks → ${hook.status}`)
    const writer = postgres(sut.db.url, { max: 1, onnotice: () => {} })
    const [{ pid: writerPid }] = await writer<{ pid: number }[]>`select pg_backend_pid() as pid`
    const backends = async () => (await admin<{ pid: number }[]>`select pid from pg_stat_activity where datname = ${sut.db.name} and pid <> ${writerPid}`).map((r) => r.pid)
    const serverPid = sut.instances[0].proc.pid!
    const tasks = Array.from({ length: Number(args.tasks) }, () => randomUUID())
    const revs = new Map(tasks.map((t) => [t, 1]))
    received = 0
    seen.clear()
    forged = 0
    const orgId = reg.organization.id
    const actorId = reg.user.id
    // Settle what registering wrote before measuring.
    await services.sleep(1000)
    const seenBefore = seen.size
    const pgPids = await backends()
    const start = { server: cpuSeconds(serverPid), postgres: pgPids.map(cpuSeconds), receiver: process.cpuUsage(), at: performance.now() }
    const total = Number(args.rate) * Number(args.seconds)
    const tick = 50
    const perTick = Math.max(1, Math.round((Number(args.rate) * tick) / 1000))
    let written = 0
    let next = 0
    while (written < total) {
      const n = Math.min(perTick, total - written)
      const batch = Array.from({ length: n }, (_, k) => {
        const task = tasks[(written + k) % tasks.length]
        const rev = revs.get(task)! + 1
        revs.set(task, rev)
        return { task, rev }
      })
      // One event per op, as an op commit writes it (the changed field, old and new value).
      await writer`
        insert into events (org_id, type, task_id, rev, actor_id, change)
        select ${orgId}::uuid, 'task.updated', x.task, x.rev, ${actorId}::uuid,
          jsonb_build_object('fields', jsonb_build_object('title', jsonb_build_object('from', 'load task ' || (x.rev - 1), 'to', 'load task ' || x.rev)))
        from jsonb_to_recordset(${writer.json(batch)}::jsonb) as x(task uuid, rev int)`
      written += n
      next += tick
      const wait = start.at + next - performance.now()
      if (wait > 0) await services.sleep(wait)
    }
    const deadline = Date.now() + 120_000
    while (seen.size - seenBefore < total && Date.now() < deadline) await services.sleep(20)
    const wallS = (performance.now() - start.at) / 1000
    const delivered = seen.size - seenBefore
    const pgNow = pgPids.map(cpuSeconds)
    const server = cpuSeconds(serverPid) - start.server
    const pg = pgNow.reduce((a, b, i) => a + b - start.postgres[i], 0)
    const rc = process.cpuUsage(start.receiver)
    const receiverS = (rc.user + rc.system) / 1e6
    const f = { server: (server / delivered) * 1e6, postgres: (pg / delivered) * 1e6, receiver: (receiverS / delivered) * 1e6 }
    figures.push(f)
    const line =
      `round ${round}: ${delivered} of ${total} events delivered in ${wallS.toFixed(1)} s (${received} deliveries, ${forged} failed verification); ` +
      `µs per delivered event: server ${f.server.toFixed(0)}, PostgreSQL ${f.postgres.toFixed(0)}, receiver ${f.receiver.toFixed(0)}; load average ${loadavg()[0].toFixed(1)}`
    log(line)
    rows.push(line)
    await writer.end()
  } finally {
    await sut.stop()
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]
console.log('\n== events cost bench ==')
console.log(`cwd ${process.cwd()}; rate ${args.rate}/s for ${args.seconds} s over ${args.tasks} tasks`)
for (const r of rows) console.log(r)
console.log(`median µs per delivered event: server ${median(figures.map((f) => f.server)).toFixed(0)}, PostgreSQL ${median(figures.map((f) => f.postgres)).toFixed(0)}, receiver ${median(figures.map((f) => f.receiver)).toFixed(0)}`)
await admin.end()
await redis.stop()
receiver.close()
process.exit(0)
