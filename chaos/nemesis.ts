/**
 * The nemesis: faults drawn from the seed, started every few seconds, each
 * healing itself after a drawn duration. At most two run at once, never two
 * on one target, and at least one instance is always running.
 */
import type { History } from './history.js'
import type { FaultProxy } from './fault-proxy.js'
import type { Rng } from './rng.js'
import type { LocalPostgres, LocalRedis, ServerInstance } from './services.js'
import type { ChaosClient } from './world.js'
import type { SdkClient } from './clients/sdk.js'

export const NEMESES = {
  kill: 'kill -9 an instance, restart it after up to 4 s',
  pause: 'SIGSTOP an instance for longer than two heartbeats, then SIGCONT',
  'pg-restart': 'restart PostgreSQL (fast or immediate shutdown)',
  'redis-restart': 'kill and restart Redis (it comes back empty)',
  latency: 'add 20–300 ms latency between an instance and PostgreSQL or Redis for a few seconds',
  drop: 'drop every connection between an instance and PostgreSQL or Redis',
  partition: 'black-hole an instance from PostgreSQL or Redis for 1–6 s (nothing passes, nothing closes)',
  'client-cut': "cut a client's network (black hole or refused) and restore it",
  tab: 'a second writer on one SDK storage (a second browser tab) for a few seconds',
} as const

export type NemesisKind = keyof typeof NEMESES

export interface Cluster {
  instances: ServerInstance[]
  pg: LocalPostgres
  redis: LocalRedis
  /** Per instance: its proxy to PostgreSQL and to Redis. */
  pgProxies: FaultProxy[]
  redisProxies: FaultProxy[]
  clients: ChaosClient[]
  sdk: SdkClient[]
  heartbeatMs: number
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

export class Nemesis {
  readonly counts: Partial<Record<NemesisKind, number>> = {}
  private readonly busy = new Set<string>()
  private readonly active = new Set<Promise<void>>()
  private running = false
  private loop: Promise<void> | null = null

  constructor(
    private readonly cluster: Cluster,
    private readonly rng: Rng,
    private readonly history: History,
    private readonly kinds: NemesisKind[],
    private readonly log: (msg: string) => void,
  ) {}

  start(): void {
    if (this.kinds.length === 0) return
    this.running = true
    this.loop = this.schedule()
  }

  /** Stops starting faults and waits for the running ones to heal. */
  async stop(): Promise<void> {
    this.running = false
    await this.loop
    while (this.active.size > 0) await Promise.all([...this.active])
  }

  private async schedule(): Promise<void> {
    while (this.running) {
      await sleep(this.rng.int(1000, 4000))
      if (!this.running) return
      if (this.active.size >= 2) continue
      const kind = this.rng.pick(this.kinds)
      const fault = this.plan(kind)
      if (!fault) continue
      this.counts[kind] = (this.counts[kind] ?? 0) + 1
      for (const t of fault.targets) this.busy.add(t)
      this.history.add({ type: 'nemesis', kind, target: fault.label, phase: 'start', detail: fault.detail })
      this.log(`nemesis ${kind} ${fault.label}${fault.detail ? ` (${fault.detail})` : ''}`)
      const p = fault
        .run()
        .catch((err) => this.history.note('nemesis', `${kind} ${fault.label} failed: ${(err as Error).message}`))
        .finally(() => {
          for (const t of fault.targets) this.busy.delete(t)
          this.history.add({ type: 'nemesis', kind, target: fault.label, phase: 'end' })
          this.active.delete(p)
        })
      this.active.add(p)
    }
  }

  /** A drawn fault of `kind` on a free target, or null when none is free. */
  private plan(kind: NemesisKind): { label: string; targets: string[]; detail?: string; run: () => Promise<void> } | null {
    const { instances, pgProxies, redisProxies, clients, sdk, heartbeatMs } = this.cluster
    const rng = this.rng
    const freeInstances = instances.map((_, i) => i).filter((i) => !this.busy.has(`instance:${i}`))
    const down = instances.length - freeInstances.length
    switch (kind) {
      case 'kill': {
        if (freeInstances.length === 0 || down + 1 >= instances.length) return null
        const i = rng.pick(freeInstances)
        const ms = rng.int(500, 4000)
        return {
          label: instances[i].name,
          targets: [`instance:${i}`],
          detail: `down ${ms} ms`,
          run: async () => {
            await instances[i].kill()
            await sleep(ms)
            await instances[i].start()
          },
        }
      }
      case 'pause': {
        if (freeInstances.length === 0 || down + 1 >= instances.length) return null
        const i = rng.pick(freeInstances)
        const ms = 2 * heartbeatMs + rng.int(500, 3000)
        return {
          label: instances[i].name,
          targets: [`instance:${i}`],
          detail: `${ms} ms`,
          run: async () => {
            instances[i].pause()
            await sleep(ms)
            instances[i].resume()
          },
        }
      }
      case 'pg-restart': {
        if (this.busy.has('pg')) return null
        const mode = rng.pick(['fast', 'immediate'] as const)
        const ms = rng.int(0, 3000)
        return { label: 'postgres', targets: ['pg'], detail: `${mode}, down ${ms} ms`, run: async () => {
          await this.cluster.pg.stop(mode)
          await sleep(ms)
          await this.cluster.pg.start()
        } }
      }
      case 'redis-restart': {
        if (this.busy.has('redis')) return null
        const ms = rng.int(0, 2000)
        return { label: 'redis', targets: ['redis'], detail: `down ${ms} ms`, run: async () => {
          await this.cluster.redis.stop()
          await sleep(ms)
          await this.cluster.redis.start()
        } }
      }
      case 'latency':
      case 'drop':
      case 'partition': {
        const service = rng.pick(['pg', 'redis'] as const)
        const i = rng.int(0, instances.length - 1)
        const target = `proxy:${service}:${i}`
        if (this.busy.has(target)) return null
        const proxy = (service === 'pg' ? pgProxies : redisProxies)[i]
        const label = `${instances[i].name}→${service}`
        if (kind === 'drop') return { label, targets: [target], run: async () => proxy.dropConnections() }
        const ms = kind === 'latency' ? rng.int(2000, 10_000) : rng.int(1000, 6000)
        if (kind === 'partition') return { label, targets: [target], detail: `${ms} ms`, run: async () => {
          proxy.blackhole()
          await sleep(ms)
          proxy.heal()
        } }
        const latency = rng.int(20, 300)
        const jitter = rng.int(0, 100)
        return { label, targets: [target], detail: `${latency}+${jitter} ms for ${ms} ms`, run: async () => {
          proxy.setLatency(latency, jitter)
          await sleep(ms)
          proxy.heal()
        } }
      }
      case 'client-cut': {
        const free = clients.filter((c) => !this.busy.has(`client:${c.name}`))
        if (free.length === 0) return null
        const c = rng.pick(free)
        const how = rng.pick(['blackhole', 'refuse'] as const)
        const ms = rng.int(500, 3 * heartbeatMs + 2000)
        return { label: c.name, targets: [`client:${c.name}`], detail: `${how} ${ms} ms`, run: async () => {
          if (how === 'blackhole') c.proxy.blackhole()
          else c.proxy.refuse()
          await sleep(ms)
          c.proxy.heal()
        } }
      }
      case 'tab': {
        const free = sdk.filter((c) => !this.busy.has(`tab:${c.name}`))
        if (free.length === 0) return null
        const c = rng.pick(free)
        const ms = rng.int(3000, 10_000)
        return { label: c.name, targets: [`tab:${c.name}`], detail: `${ms} ms`, run: async () => void (await c.tab(ms)) }
      }
    }
  }
}
