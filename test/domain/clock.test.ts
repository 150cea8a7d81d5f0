/** Vector clocks: increment, merge, compare, all pure. */
import t from 'tap'
import fc from 'fast-check'
import { compare, increment, isVectorClock, merge, type VectorClock } from '../../src/domain/index.js'

t.test('increment counts one device and returns a new clock', async (t) => {
  const c: VectorClock = Object.freeze({ a: 1 })
  t.same(increment(c, 'a'), { a: 2 })
  t.same(increment(c, 'b'), { a: 1, b: 1 })
  t.same(c, { a: 1 })
  const p = increment({}, '__proto__')
  t.equal(Object.getPrototypeOf(p), Object.prototype, 'a "__proto__" device id stays a plain key')
  t.same(Object.entries(p), [['__proto__', 1]])
})

t.test('merge is the element-wise max', async (t) => {
  t.same(merge({ a: 3, b: 1 }, { b: 4, c: 2 }), { a: 3, b: 4, c: 2 })
  t.same(merge({}, {}), {})
})

t.test('compare', async (t) => {
  t.equal(compare({ a: 1 }, { a: 1 }), 'EQUAL')
  t.equal(compare({}, { a: 0 }), 'EQUAL', 'a missing device counts 0')
  t.equal(compare({ a: 1 }, { a: 2 }), 'BEFORE')
  t.equal(compare({ a: 1 }, { a: 1, b: 1 }), 'BEFORE')
  t.equal(compare({ a: 2, b: 1 }, { a: 1 }), 'AFTER')
  t.equal(compare({ a: 2 }, { b: 1 }), 'CONCURRENT')
  t.equal(compare({ a: 2, b: 0 }, { a: 1, b: 3 }), 'CONCURRENT')
})

t.test('laws', async (t) => {
  const clock = fc.dictionary(fc.constantFrom('a', 'b', 'c', 'd'), fc.nat({ max: 5 }), { noNullPrototype: true })
  t.doesNotThrow(() =>
    fc.assert(
      fc.property(clock, clock, fc.constantFrom('a', 'b', 'e'), (x, y, id) => {
        const m = merge(x, y)
        const ok =
          compare(x, m) !== 'AFTER' && compare(x, m) !== 'CONCURRENT' &&
          compare(m, merge(y, x)) === 'EQUAL' &&
          compare(increment(x, id), x) === 'AFTER' &&
          compare(x, y) === ({ EQUAL: 'EQUAL', BEFORE: 'AFTER', AFTER: 'BEFORE', CONCURRENT: 'CONCURRENT' } as const)[compare(y, x)]
        if (!ok) throw new Error(`laws fail for ${JSON.stringify({ x, y, id })}`)
      }),
      { seed: 42, numRuns: 500 },
    ),
  )
})

t.test('isVectorClock', async (t) => {
  t.ok(isVectorClock({ a: 1, b: 0 }))
  t.notOk(isVectorClock({ a: -1 }))
  t.notOk(isVectorClock({ a: 1.5 }))
  t.notOk(isVectorClock([1]))
  t.notOk(isVectorClock(null))
})
