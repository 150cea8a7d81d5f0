/**
 * Runs `chaos/run.ts` as a child process (it starts and kills its own
 * PostgreSQL, Redis and instances) and answers its JSON summary.
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Verdict } from '../../chaos/checker.js'

export interface ChaosSummary {
  ok: boolean
  seed: number
  verdicts: (Verdict & { violated: number })[]
  counts: { committedOps: number; faults: Record<string, number>; mutations: Record<string, { sent: number; acked: number }> }
  history: string
}

interface Teardown {
  teardown(fn: () => unknown): void
  comment(...args: unknown[]): void
}

export async function runChaos(t: Teardown, args: string[]): Promise<ChaosSummary> {
  const dir = mkdtempSync(join(tmpdir(), 'tasksync-chaos-test-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const json = join(dir, 'summary.json')
  const child = spawn(process.execPath, ['--import', 'tsx', 'chaos/run.ts', '--server', 'tsx', '--out', join(dir, 'run'), '--json', json, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGTERM')
  })
  let out = ''
  child.stdout.on('data', (d: Buffer) => (out += d.toString()))
  child.stderr.on('data', (d: Buffer) => (out += d.toString()))
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve))
  if (code !== 0 && code !== 1) throw new Error(`chaos run failed to run (exit ${code}):\n${out.slice(-4000)}`)
  // The report: verdicts, counts, and on failure the excerpts.
  t.comment(out.slice(out.indexOf('== tasksync chaos')).slice(0, 6000))
  return JSON.parse(readFileSync(json, 'utf8')) as ChaosSummary
}
