/**
 * What a run reports: one RunResult per scenario run and system under test;
 * a table on the terminal, and with `--out dir` results.json and report.html
 * (latency CDFs drawn as SVG, the CPU breakdown per committed op).
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Histogram } from './histogram.js'
import type { CpuSpent } from './cpu.js'

export interface Percentiles {
  p50: number
  p95: number
  p99: number
}

export interface Invariant {
  name: string
  ok: boolean
  detail: string
}

export interface RunResult {
  scenario: string
  peer: 'tasksync' | 'sharedb'
  client: 'raw' | 'sdk' | 'sharedb'
  round: number
  params: Record<string, unknown>
  durationS: number
  committedOps: number
  committedOpsPerS: number
  deliveredMsgsPerS: number
  ackMs: Percentiles
  fanoutMs: Percentiles
  /** Core-seconds in the measured window per group, and core-ms per committed op. */
  cpu: CpuSpent & { perOpMs: { server: number; postgres: number; redis: number; total: number } }
  serverRssMiB: number[]
  errors: number
  gaps: number
  errorSamples: string[]
  invariants: Invariant[]
  /** Scenario-specific figures (resume times, memory slope, cost per user…). */
  extra: Record<string, unknown>
  /** [latency ms, fraction ≤ it] points of the measured window. */
  cdf: { ack: [number, number][]; fanout: [number, number][] }
}

export const percentiles = (h: Histogram): Percentiles => ({ p50: h.percentile(50), p95: h.percentile(95), p99: h.percentile(99) })

/** About 120 points of the CDF, denser in the tail. */
export function cdfPoints(h: Histogram): [number, number][] {
  if (h.count === 0) return []
  const qs = [0.1, 1, 2, 5, ...Array.from({ length: 18 }, (_, i) => 10 + i * 5), 96, 97, 98, 99, 99.5, 99.8, 99.9, 99.95, 100]
  const fine = Array.from({ length: 80 }, (_, i) => (i + 1) * 1.25)
  const all = [...new Set([...qs, ...fine])].sort((a, b) => a - b)
  return all.map((q) => [h.percentile(q), q / 100])
}

export const fmt = (n: number | undefined, d = 1): string => (typeof n === 'number' && Number.isFinite(n) ? n.toFixed(d) : '–')
export const median = (xs: number[]): number => {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b)
  if (!s.length) return NaN
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}

function pad(rows: string[][]): string {
  const w = rows[0].map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)))
  return rows.map((r) => r.map((cell, c) => (c === 0 ? cell.padEnd(w[c]) : cell.padStart(w[c]))).join('  ')).join('\n')
}

const label = (r: RunResult) => `${r.scenario}/${r.peer === 'sharedb' ? 'sharedb' : `tasksync-${r.client}`}`

/** One line per run, then the medians per scenario and system, then the side-by-side ratios. */
export function table(results: RunResult[]): string {
  const head = ['run', 'round', 'ops/s', 'ack p50/p95/p99 ms', 'fan-out p50/p95/p99 ms', 'core-ms/op srv+pg+redis=total', 'errors', 'gaps', 'invariants']
  const line = (r: RunResult, round: string) => [
    label(r),
    round,
    fmt(r.committedOpsPerS, 0),
    `${fmt(r.ackMs.p50)}/${fmt(r.ackMs.p95)}/${fmt(r.ackMs.p99)}`,
    `${fmt(r.fanoutMs.p50)}/${fmt(r.fanoutMs.p95)}/${fmt(r.fanoutMs.p99)}`,
    `${fmt(r.cpu.perOpMs.server, 3)}+${fmt(r.cpu.perOpMs.postgres, 3)}+${fmt(r.cpu.perOpMs.redis, 3)}=${fmt(r.cpu.perOpMs.total, 3)}`,
    String(r.errors),
    String(r.gaps),
    r.invariants.every((i) => i.ok) ? 'ok' : 'FAILED: ' + r.invariants.filter((i) => !i.ok).map((i) => i.name).join(', '),
  ]
  const rows = [head, ...results.map((r) => line(r, String(r.round)))]
  const groups = new Map<string, RunResult[]>()
  for (const r of results) groups.set(label(r), [...(groups.get(label(r)) ?? []), r])
  const medians = new Map<string, { ops: number; cpu: number; p99: number }>()
  for (const [name, rs] of groups) {
    if (rs.length < 2) continue
    const m = (f: (r: RunResult) => number) => median(rs.map(f))
    medians.set(name, { ops: m((r) => r.committedOpsPerS), cpu: m((r) => r.cpu.perOpMs.total), p99: m((r) => r.fanoutMs.p99) })
    rows.push([
      name,
      `median of ${rs.length}`,
      fmt(m((r) => r.committedOpsPerS), 0),
      `${fmt(m((r) => r.ackMs.p50))}/${fmt(m((r) => r.ackMs.p95))}/${fmt(m((r) => r.ackMs.p99))}`,
      `${fmt(m((r) => r.fanoutMs.p50))}/${fmt(m((r) => r.fanoutMs.p95))}/${fmt(m((r) => r.fanoutMs.p99))}`,
      `${fmt(m((r) => r.cpu.perOpMs.server), 3)}+${fmt(m((r) => r.cpu.perOpMs.postgres), 3)}+${fmt(m((r) => r.cpu.perOpMs.redis), 3)}=${fmt(m((r) => r.cpu.perOpMs.total), 3)}`,
      '',
      '',
      '',
    ])
  }
  let out = pad(rows)
  for (const r of results.filter((x) => x.peer === 'sharedb')) {
    const ts = results.find((x) => x.peer === 'tasksync' && x.scenario === r.scenario && x.round === r.round)
    if (ts)
      out += `\nround ${r.round}: tasksync/ShareDB ops/s ${fmt(ts.committedOpsPerS / r.committedOpsPerS, 2)}×, CPU per op ${fmt(ts.cpu.perOpMs.total / r.cpu.perOpMs.total, 2)} of ShareDB's (ShareDB ${fmt(r.cpu.perOpMs.total / ts.cpu.perOpMs.total, 2)}× tasksync's)`
  }
  for (const r of results) {
    const extra = Object.entries(r.extra).filter(([, v]) => typeof v === 'number' || typeof v === 'string')
    if (extra.length) out += `\n${label(r)} round ${r.round}: ` + extra.map(([k, v]) => `${k} ${typeof v === 'number' ? fmt(v, 2) : v}`).join(', ')
    for (const b of (r.extra.serverSide ?? []) as Record<string, number>[])
      out +=
        `\n${label(r)} round ${r.round} server side: ack mean ${fmt(b.ackMeanMs)} ms = queued ${fmt(b.queuedMeanMs)} + statement ${fmt(b.statementMeanMs)}` +
        ` (${fmt(b.rowsPerStatement)} rows) + rest; event-loop p99 ${fmt(b.eventLoopP99Ms)} ms, GC ${fmt(b.gcMsPerS)} ms/s`
    const waits = r.extra.pgWaits as Record<string, number> | undefined
    if (waits) out += `\n${label(r)} round ${r.round} PostgreSQL backends (% of active samples): ` + Object.entries(waits).map(([k, v]) => `${k} ${v}`).join(', ')
    out += `\n${label(r)} round ${r.round} invariants:`
    for (const i of r.invariants) out += `\n  ${i.ok ? 'ok  ' : 'FAIL'} ${i.name}: ${i.detail}`
  }
  return out
}

const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!)
const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#e377c2', '#17becf']

/** A CDF plot: x latency (ms, log scale), y fraction of ops. */
function cdfSvg(title: string, series: { name: string; points: [number, number][] }[]): string {
  const W = 560
  const H = 300
  const L = 50
  const B = 40
  const all = series.flatMap((s) => s.points.map((p) => p[0])).filter((x) => x > 0)
  if (!all.length) return `<p>${esc(title)}: no samples</p>`
  const lo = Math.max(0.1, Math.min(...all))
  const hi = Math.max(...all) * 1.05
  const lx = (ms: number) => L + ((Math.log10(Math.max(ms, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo) || 1)) * (W - L - 10)
  const ly = (f: number) => 10 + (1 - f) * (H - B - 10)
  const ticks: number[] = []
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) for (const m of [1, 2, 5]) if (m * 10 ** e >= lo && m * 10 ** e <= hi) ticks.push(m * 10 ** e)
  const grid = [
    ...ticks.map((t) => `<line x1="${lx(t)}" y1="10" x2="${lx(t)}" y2="${H - B}" stroke="#eee"/><text x="${lx(t)}" y="${H - B + 14}" font-size="10" text-anchor="middle">${t}</text>`),
    ...[0, 0.25, 0.5, 0.75, 0.9, 1].map((f) => `<line x1="${L}" y1="${ly(f)}" x2="${W - 10}" y2="${ly(f)}" stroke="#eee"/><text x="${L - 4}" y="${ly(f) + 3}" font-size="10" text-anchor="end">${f}</text>`),
  ]
  const lines = series.map(
    (s, i) =>
      `<polyline fill="none" stroke="${COLORS[i % COLORS.length]}" stroke-width="1.5" points="${s.points.map(([x, y]) => `${lx(x).toFixed(1)},${ly(y).toFixed(1)}`).join(' ')}"/>` +
      `<text x="${W - 14}" y="${H - B - 8 - 12 * i}" font-size="11" text-anchor="end" fill="${COLORS[i % COLORS.length]}">${esc(s.name)}</text>`,
  )
  return `<figure><svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif">
<text x="${L}" y="${H - 6}" font-size="11">${esc(title)} (ms, log scale)</text>${grid.join('')}
<rect x="${L}" y="10" width="${W - L - 10}" height="${H - B - 10}" fill="none" stroke="#999"/>${lines.join('')}</svg></figure>`
}

/** Stacked bars of core-ms per committed op: server, PostgreSQL, Redis. */
function cpuSvg(results: RunResult[]): string {
  const W = 560
  const rowH = 22
  const H = 30 + results.length * rowH
  const max = Math.max(...results.map((r) => r.cpu.perOpMs.total).filter(Number.isFinite), 0.001)
  const scale = (W - 220) / max
  const parts: [keyof RunResult['cpu']['perOpMs'], string][] = [
    ['server', '#1f77b4'],
    ['postgres', '#2ca02c'],
    ['redis', '#d62728'],
  ]
  const bars = results.map((r, i) => {
    let x = 170
    const y = 20 + i * rowH
    const segs = parts.map(([k, c]) => {
      const w = Math.max(0, (r.cpu.perOpMs[k] || 0) * scale)
      const s = `<rect x="${x}" y="${y}" width="${w}" height="${rowH - 6}" fill="${c}"><title>${k} ${fmt(r.cpu.perOpMs[k], 3)} core-ms/op</title></rect>`
      x += w
      return s
    })
    return `<text x="165" y="${y + 12}" font-size="11" text-anchor="end">${esc(label(r))} #${r.round}</text>${segs.join('')}<text x="${x + 4}" y="${y + 12}" font-size="11">${fmt(r.cpu.perOpMs.total, 3)}</text>`
  })
  const legend = parts.map(([k, c], i) => `<rect x="${170 + i * 90}" y="2" width="10" height="10" fill="${c}"/><text x="${184 + i * 90}" y="11" font-size="11">${k}</text>`)
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif">${legend.join('')}${bars.join('')}</svg>`
}

export function html(results: RunResult[], meta: Record<string, unknown>): string {
  const scenarios = [...new Set(results.map((r) => r.scenario))]
  const sections = scenarios.map((sc) => {
    const rs = results.filter((r) => r.scenario === sc)
    const series = (k: 'ack' | 'fanout') => rs.map((r) => ({ name: `${label(r)} #${r.round}`, points: r.cdf[k] }))
    const rows = rs
      .map(
        (r) =>
          `<tr><td>${esc(label(r))}</td><td>${r.round}</td><td>${fmt(r.committedOpsPerS, 0)}</td><td>${fmt(r.ackMs.p50)} / ${fmt(r.ackMs.p95)} / ${fmt(r.ackMs.p99)}</td>` +
          `<td>${fmt(r.fanoutMs.p50)} / ${fmt(r.fanoutMs.p95)} / ${fmt(r.fanoutMs.p99)}</td><td>${fmt(r.cpu.perOpMs.server, 3)}</td><td>${fmt(r.cpu.perOpMs.postgres, 3)}</td>` +
          `<td>${fmt(r.cpu.perOpMs.redis, 3)}</td><td>${fmt(r.cpu.perOpMs.total, 3)}</td><td>${r.errors}</td><td>${r.gaps}</td>` +
          `<td>${r.invariants.map((i) => `${i.ok ? '✓' : '✗'} ${esc(i.name)}: ${esc(i.detail)}`).join('<br>')}</td></tr>`,
      )
      .join('\n')
    const extras = rs
      .filter((r) => Object.keys(r.extra).length)
      .map((r) => `<h4>${esc(label(r))} #${r.round}</h4><pre>${esc(JSON.stringify(r.extra, null, 1))}</pre>`)
      .join('')
    return `<section><h2>${esc(sc)}</h2>
<table><tr><th>system</th><th>round</th><th>ops/s</th><th>ack p50 / p95 / p99 ms</th><th>fan-out p50 / p95 / p99 ms</th><th>server</th><th>PostgreSQL</th><th>Redis</th><th>total core-ms/op</th><th>errors</th><th>gaps</th><th>invariants</th></tr>
${rows}</table>
${cdfSvg(`${sc}: ack latency`, series('ack'))}${cdfSvg(`${sc}: fan-out latency`, series('fanout'))}
<h3>Server-side CPU per committed op (core-ms)</h3>${cpuSvg(rs)}${extras}</section>`
  })
  return `<!doctype html><html><head><meta charset="utf-8"><title>tasksync load report</title>
<style>body{font-family:sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px;text-align:right;vertical-align:top}td:first-child,td:last-child{text-align:left}figure{display:inline-block;margin:1em 1em 0 0}pre{font-size:12px;background:#f6f6f6;padding:6px}</style></head>
<body><h1>tasksync load report</h1><pre>${esc(Object.entries(meta).map(([k, v]) => `${k}: ${JSON.stringify(v)}`).join('\n'))}</pre>
<pre>${esc(table(results))}</pre>${sections.join('\n')}</body></html>`
}

export function writeReport(dir: string, results: RunResult[], meta: Record<string, unknown>): void {
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, 'results.json'), JSON.stringify({ meta, results }, null, 1))
  writeFileSync(join(dir, 'report.html'), html(results, meta))
}
