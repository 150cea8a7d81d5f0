/**
 * A short seeded chaos run (chaos/run.ts) inside the suite: three instances on
 * the run's own PostgreSQL and Redis, SDK, raw-socket and REST clients, every
 * nemesis but one, then every property of chaos/checker.ts must hold.
 *
 * The tab nemesis (a second SDK writer on one storage) is left out here until
 * the SDK gives each tab its own clientId (issue 10, defect 1, fixed on the
 * `lost` branch): until then two tabs share one (clientId, seq) and the checker
 * rightly reports the lost edit. `npm run chaos` keeps it on by default.
 */
import t from 'tap'
import { runChaos, type ChaosSummary } from './run-chaos.js'

t.setTimeout(240_000)

const summary: ChaosSummary = await runChaos(t, ['--seconds', '45', '--seed', '20261206', '--exclude', 'tab', '--quiet', '60'])

t.equal(summary.ok, true, 'every property holds')
for (const v of summary.verdicts) t.ok(v.ok, `${v.property}: ${v.ok ? `${v.checked} checked` : v.violations.map((x) => x.message).slice(0, 3).join('; ')}`)
const faults = Object.values(summary.counts.faults).reduce((a, b) => a + b, 0)
t.ok(faults >= 5, `faults were injected (${JSON.stringify(summary.counts.faults)})`)
t.ok(summary.counts.committedOps > 100, `ops were committed (${summary.counts.committedOps})`)
