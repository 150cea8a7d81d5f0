/**
 * The Redis bus's CPU per committed op on one instance: what the sequencer's
 * publications and their echo cost the publishing process, nothing else. One
 * process, one RedisBus, the org channel subscribed as the gateway does
 * (subscribeOrgNotices: this instance's own notices are dropped), then --ticks
 * ticks of --batch commit notices each (a group commit's ops, published together
 * as the announcer does), and a barrier message from a second bus: once it has
 * arrived, every echo before it has been read. The process's CPU over that
 * window, per notice. `--src` names the checkout whose src/bus is measured, so
 * two builds are compared by running this from either with the other's path,
 * alternately (--rounds each, medians):
 *
 *   npx tsx load/bus-bench.ts [--ticks 2000] [--batch 20] [--rounds 3] [--src /path/to/other/checkout]
 */
import { fork } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { loadavg } from 'node:os'
import { parseArgs } from 'node:util'
import { fileURLToPath } from 'node:url'

const { values: args } = parseArgs({
  args: process.argv.slice(2).filter((a) => a !== '--'),
  options: {
    ticks: { type: 'string', default: '2000' },
    batch: { type: 'string', default: '20' },
    rounds: { type: 'string', default: '3' },
    src: { type: 'string' },
    child: { type: 'string' },
    'redis-url': { type: 'string', default: process.env.LOAD_REDIS_URL ?? 'redis://127.0.0.1:6379' },
  },
})

const here = fileURLToPath(new URL('..', import.meta.url))

if (args.child) {
  const { RedisBus } = await import(`${args.child}/src/bus/redis.ts`)
  const { subscribeOrgNotices, publishNotice } = await import(`${args.child}/src/bus/notices.ts`)
  const prefix = `bus-bench:${randomUUID()}:`
  const bus = await RedisBus.connect({ url: args['redis-url']!, prefix, instanceId: 'bench-a' })
  const other = await RedisBus.connect({ url: args['redis-url']!, prefix, instanceId: 'bench-b' })
  const orgId = randomUUID()
  let barrier: () => void = () => {}
  let received = 0
  await subscribeOrgNotices(bus, orgId, 'bench-a', (n: { kind: string }) => {
    if (n.kind === 'presence') barrier()
    else received++
  })
  const notices = Array.from({ length: Number(args.batch) }, (_, i) => {
    const taskId = randomUUID()
    const event = {
      type: 'op',
      taskId,
      rev: 100 + i,
      op: { title: [17, 'x'], customFields: { lt: { set: 1733580000000.123 } } },
      userId: randomUUID(),
      deviceId: randomUUID(),
      clientId: randomUUID(),
      seq: 42,
      at: new Date().toISOString(),
    }
    return { kind: 'op', from: 'bench-a', orgId, taskId, rev: 100 + i, projectId: null, event, eventJson: JSON.stringify(event) }
  })
  const run = async (ticks: number) => {
    const start = process.cpuUsage()
    const t0 = performance.now()
    for (let t = 0; t < ticks; t++) {
      await Promise.all(notices.map((n) => publishNotice(bus, n)))
    }
    const done = new Promise<void>((r) => (barrier = r))
    await publishNotice(other, { kind: 'presence', from: 'bench-b', orgId, taskId: randomUUID(), projectId: null, userId: 'u', clientId: 'c', state: null })
    await done
    const cpu = process.cpuUsage(start)
    return { cpuUsPerOp: (cpu.user + cpu.system) / (ticks * notices.length), wallMs: performance.now() - t0 }
  }
  await run(200) // warm-up
  const r = await run(Number(args.ticks))
  process.send!({ ...r, received })
  await bus.close()
  await other.close()
  process.exit(0)
}

const one = (src: string) =>
  new Promise<{ cpuUsPerOp: number; wallMs: number; received: number }>((resolve, reject) => {
    const p = fork(fileURLToPath(import.meta.url), ['--child', src, '--ticks', args.ticks!, '--batch', args.batch!, '--redis-url', args['redis-url']!], {
      execArgv: ['--import', 'tsx'],
    })
    p.once('message', resolve)
    p.once('exit', (code) => code !== 0 && reject(new Error(`child exited ${code}`)))
  })

const sides = [['this checkout', here], ...(args.src ? [['--src', args.src]] : [])] as const
const results = new Map<string, number[]>()
for (let round = 1; round <= Number(args.rounds); round++) {
  for (const [name, src] of sides) {
    const r = await one(src)
    ;(results.get(name) ?? results.set(name, []).get(name)!).push(r.cpuUsPerOp)
    console.log(`round ${round} ${name} (${src}): ${r.cpuUsPerOp.toFixed(2)} µs CPU per op, ${r.wallMs.toFixed(0)} ms, own echoes handed to the handler: ${r.received}; load ${loadavg()[0].toFixed(2)}`)
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
for (const [name, xs] of results) console.log(`${name}: median ${median(xs).toFixed(2)} µs CPU per op (${xs.map((x) => x.toFixed(2)).join(', ')})`)
