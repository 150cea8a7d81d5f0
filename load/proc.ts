/** CPU and memory of processes, read from /proc (Linux). */
import { readFileSync, readdirSync } from 'node:fs'

const TICKS_PER_S = 100

/** CPU seconds (user + system) a process has used so far; 0 if it is gone. */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_S
  } catch {
    return 0
  }
}

/** Resident set size in bytes; 0 if the process is gone. */
export function rssBytes(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m ? Number(m[1]) * 1024 : 0
  } catch {
    return 0
  }
}

/** Pids whose command name (comm) is `name`, e.g. 'postgres' or 'redis-server'. */
export function pidsNamed(name: string): number[] {
  const out: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() === name) out.push(Number(entry))
    } catch {
      /* process ended while listing */
    }
  }
  return out
}

/** Total CPU seconds of all processes named `name` (PostgreSQL forks a backend per connection). */
export function cpuSecondsNamed(name: string): number {
  return pidsNamed(name).reduce((sum, pid) => sum + cpuSeconds(pid), 0)
}
