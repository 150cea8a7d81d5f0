/** load/histogram.ts: toSparse and merge read only the buckets in use; the answers are those of a full scan. */
import fc from 'fast-check'
import t from 'tap'
import { BUCKETS, Histogram } from '../../load/histogram.js'

const fullSparse = (h: Histogram): [number, number][] => h.counts.flatMap((c, i) => (c ? [[i, c] as [number, number]] : []))
const samples = fc.array(fc.oneof(fc.double({ min: -5, max: 200, noNaN: true }), fc.double({ min: 9_990, max: 20_000, noNaN: true })), { maxLength: 40 })

t.test('sparse form, round trip and merge equal a full scan', async (t) => {
  t.doesNotThrow(() =>
    fc.assert(
      fc.property(samples, samples, samples, (a, b, c) => {
        const ha = new Histogram()
        const hb = new Histogram()
        for (const ms of a) ha.record(ms)
        for (const ms of b) hb.record(ms)
        const sa = ha.toSparse()
        if (JSON.stringify(sa) !== JSON.stringify(fullSparse(ha))) throw new Error('toSparse')
        const back = Histogram.fromSparse(sa)
        if (JSON.stringify(back.toSparse()) !== JSON.stringify(sa) || back.count !== a.length) throw new Error('round trip')
        // Merged into one that has its own range, and into an empty one.
        const hc = new Histogram()
        for (const ms of c) hc.record(ms)
        hc.merge(back)
        hc.merge(hb)
        const naive = new Array(BUCKETS + 1).fill(0)
        for (const ms of [...a, ...b, ...c]) naive[Math.min(BUCKETS, Math.max(0, Math.floor(ms / 0.1)))]++
        if (JSON.stringify(hc.counts) !== JSON.stringify(naive)) throw new Error('merge')
        if (JSON.stringify(hc.toSparse()) !== JSON.stringify(fullSparse(hc))) throw new Error('toSparse after merge')
        const fromCounts = new Histogram([...naive])
        if (!Object.is(fromCounts.percentile(99), hc.percentile(99)) || JSON.stringify(fromCounts.toSparse()) !== JSON.stringify(hc.toSparse())) throw new Error('from counts')
      }),
      { numRuns: 300 },
    ),
    '300 random sample sets',
  )
})
