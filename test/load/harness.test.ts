/**
 * A seeded smoke of the load harness (load/run.ts), not a benchmark: steady and
 * hot at tiny sizes against the server run from source, peer none. The run
 * must pass its own invariants (convergence, no gap, no lost acked op, hot's
 * identical replicas) and write the JSON and HTML report in the documented
 * shape. No figure is asserted: the box is shared.
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { PG_ADMIN_URL, TEST_REDIS_URL } from '../helpers/db.js'

t.test('steady and hot at tiny sizes hold their invariants and report', async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'tasksync-load-'))
  t.teardown(() => rmSync(out, { recursive: true, force: true }))
  const args = [
    'load/run.ts',
    ...['--scenario', 'steady,hot', '--peer', 'none', '--server', 'tsx', '--seed', '7'],
    ...['--tasks', '3', '--sockets-per-task', '3', '--writers', '4', '--workers', '1', '--duration', '2', '--warmup', '1'],
    ...['--pg-url', PG_ADMIN_URL, '--redis-url', TEST_REDIS_URL, '--out', out],
  ]
  const child = spawn(process.execPath, ['--import', 'tsx', ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout.on('data', (d) => (output += d))
  child.stderr.on('data', (d) => (output += d))
  const code = await new Promise<number | null>((r) => child.on('exit', r))
  t.equal(code, 0, 'the harness exits 0 (every invariant held)', { output: output.slice(-4000) })
  t.match(output, /\[steady\/tasksync-raw #1\] \d+s +\d+ ops\/s +fan-out p99 /, 'a progress line while running')
  t.match(output, /== tasksync load: results ==/, 'then the table')

  const { meta, results } = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8'))
  t.equal(meta.seed, '7')
  t.type(meta.loadAverageAtStart[0], 'number')
  t.same(
    results.map((r: { scenario: string; peer: string; client: string }) => [r.scenario, r.peer, r.client]),
    [
      ['steady', 'tasksync', 'raw'],
      ['hot', 'tasksync', 'sdk'],
    ],
  )
  for (const r of results) {
    t.ok(r.committedOps > 0, `${r.scenario}: ops committed in the window`)
    for (const k of ['p50', 'p95', 'p99']) t.type(r.ackMs[k], 'number', `${r.scenario}: ack ${k}`)
    for (const k of ['server', 'postgres', 'redis', 'total']) t.ok(Number.isFinite(r.cpu.perOpMs[k]), `${r.scenario}: CPU per op, ${k}`)
    t.ok(r.cdf.ack.length > 10, `${r.scenario}: an ack CDF`)
    const names = r.invariants.map((i: { name: string }) => i.name)
    for (const n of ['convergence', 'no gap', 'op log gap-free', 'no acked op lost']) t.ok(names.includes(n), `${r.scenario} checks ${n}`)
    t.ok(
      r.invariants.every((i: { ok: boolean }) => i.ok),
      `${r.scenario}: every invariant holds`,
      { invariants: r.invariants },
    )
  }
  t.ok(results[1].invariants.some((i: { name: string; ok: boolean }) => i.name === 'replicas identical' && i.ok), 'hot: every replica identical')
  t.equal(results[0].gaps + results[1].gaps, 0)
  const html = readFileSync(join(out, 'report.html'), 'utf8')
  t.match(html, /<svg[^>]*>[\s\S]*<polyline/, 'the HTML report draws the CDFs')
})
