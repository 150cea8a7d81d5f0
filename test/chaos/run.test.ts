/**
 * A short seeded chaos run (chaos/run.ts) inside the suite: three instances on
 * the run's own PostgreSQL and Redis, SDK, raw-socket and REST clients, every
 * nemesis (the tab one included: a second SDK writer on one storage, its own
 * writer slot, sometimes closed with edits unsent for the first to adopt),
 * then every property of chaos/checker.ts must hold.
 */
import t from 'tap'
import { runChaos, type ChaosSummary } from './run-chaos.js'

t.setTimeout(240_000)

const summary: ChaosSummary = await runChaos(t, ['--seconds', '45', '--seed', '20261206', '--quiet', '60'])

t.equal(summary.ok, true, 'every property holds')
for (const v of summary.verdicts) t.ok(v.ok, `${v.property}: ${v.ok ? `${v.checked} checked` : v.violations.map((x) => x.message).slice(0, 3).join('; ')}`)
const faults = Object.values(summary.counts.faults).reduce((a, b) => a + b, 0)
t.ok(faults >= 5, `faults were injected (${JSON.stringify(summary.counts.faults)})`)
t.ok(summary.counts.committedOps > 100, `ops were committed (${summary.counts.committedOps})`)
