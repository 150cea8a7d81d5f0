/**
 * Server-side CPU of a run, per process group: the server processes, the
 * PostgreSQL backends serving the run's own database (found in
 * pg_stat_activity, read in /proc) and Redis. Two samples give core-seconds
 * spent in between; divided by committed ops, core-ms per op.
 */
import type postgres from 'postgres'
import { cpuSeconds } from './proc.js'

export interface CpuSources {
  /** Server processes (tasksync instances or the ShareDB server). */
  servers: () => number[]
  /** The run's databases: their backends are counted, other databases' are not. */
  databases: string[]
  /** redis-server processes (the harness's own Redis when it started one). */
  redis: number[]
  /** Load generator workers (reported, never counted as server-side). */
  generators: () => number[]
}

export type CpuSample = Record<'server' | 'postgres' | 'redis' | 'generator', Map<number, number>> & { at: number }

export interface CpuSpent {
  /** Core-seconds spent in the window, per group. */
  server: number
  postgres: number
  redis: number
  generator: number
  /** Wall seconds of the window. */
  wallS: number
  postgresBackends: number
}

const byPid = (pids: number[]) => new Map(pids.map((p) => [p, cpuSeconds(p)]))

export async function sampleCpu(sql: postgres.Sql, src: CpuSources): Promise<CpuSample> {
  const rows = await sql<{ pid: number }[]>`select pid from pg_stat_activity where datname = any(${src.databases})`
  return {
    at: Date.now(),
    server: byPid(src.servers()),
    postgres: byPid(rows.map((r) => r.pid)),
    redis: byPid(src.redis),
    generator: byPid(src.generators()),
  }
}

/** CPU spent between two samples; a process born in between counts from zero, one gone by the end counts nothing. */
export function cpuBetween(a: CpuSample, b: CpuSample): CpuSpent {
  const diff = (x: Map<number, number>, y: Map<number, number>) => {
    let sum = 0
    for (const [pid, end] of y) if (end > 0) sum += end - (x.get(pid) ?? 0)
    return sum
  }
  return {
    server: diff(a.server, b.server),
    postgres: diff(a.postgres, b.postgres),
    redis: diff(a.redis, b.redis),
    generator: diff(a.generator, b.generator),
    wallS: (b.at - a.at) / 1000,
    postgresBackends: b.postgres.size,
  }
}
