/**
 * The chaos checker can fail: each deliberately broken server (TASKSYNC_FAULT,
 * test-only) is caught by the property it breaks. Short runs on two instances
 * without a nemesis: concurrent writers on both are enough to expose each.
 */
import t from 'tap'
import { runChaos } from './run-chaos.js'

t.setTimeout(300_000)

const cases = [
  // Acked before the commit: ops whose commit then lost a race (or failed) are acked yet absent from the log.
  { fault: 'ack-before-commit', property: 'acked-in-log' },
  // One publication from another instance dropped with its repair: subscribers there miss a rev.
  { fault: 'drop-publication', property: 'gap-free-delivery' },
]

for (const c of cases) {
  t.test(`TASKSYNC_FAULT=${c.fault} is caught by ${c.property}`, async (t) => {
    const summary = await runChaos(t, [
      ...['--seconds', '12', '--seed', '7', '--nemesis', 'none', '--fault', c.fault, '--quiet', '15'],
      ...['--instances', '2', '--sdk', '2', '--raw', '2', '--rest', '1'],
    ])
    t.equal(summary.ok, false, 'the run fails')
    const verdict = summary.verdicts.find((v) => v.property === c.property)!
    t.equal(verdict.ok, false, `${c.property} is violated`)
    t.ok(verdict.violations.length > 0 && verdict.violations[0].excerpt.length > 0, 'with an excerpt of the history that shows it')
  })
}
