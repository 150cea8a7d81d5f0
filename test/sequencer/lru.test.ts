import t from 'tap'
import fc from 'fast-check'
import { Lru } from '../../src/sequencer/lru.js'

t.test('values, delete and the bound', async (t) => {
  const lru = new Lru<number>(4)
  lru.set('a', 1)
  lru.set('a', 2)
  t.equal(lru.get('a'), 2, 'the last value set')
  lru.delete('a')
  t.equal(lru.get('a'), undefined, 'deleted')
  for (let i = 0; i < 10; i++) lru.set(`k${i}`, i)
  t.equal(lru.size, 4, 'never more than max')
  t.same(
    ['k6', 'k7', 'k8', 'k9'].map((k) => lru.get(k)),
    [6, 7, 8, 9],
    'the most recent stay',
  )
})

t.test('a key read often is kept while others come and go', async (t) => {
  const lru = new Lru<number>(100)
  lru.set('hot', 1)
  for (let i = 0; i < 10_000; i++) {
    lru.set(`cold${i}`, i)
    t.equal(lru.get('hot'), 1)
  }
  t.equal(lru.size, 100)
})

t.test('model: what is evicted was idle for at least max - max/2 operations; values are the last set', async (t) => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 12 }),
      fc.array(fc.tuple(fc.constantFrom('get', 'set', 'delete'), fc.integer({ min: 0, max: 30 })), { maxLength: 400 }),
      (max, ops) => {
        const lru = new Lru<number>(max)
        const model = new Map<string, { value: number; used: number }>()
        let n = 0
        for (const [op, k] of ops) {
          const key = `k${k}`
          n++
          if (op === 'delete') {
            lru.delete(key)
            model.delete(key)
            n-- // not an operation of the cache's clock
          } else if (op === 'set') {
            lru.set(key, n)
            model.set(key, { value: n, used: n })
          } else {
            const got = lru.get(key)
            const m = model.get(key)
            if (m) {
              if (got !== m.value) return false
              m.used = n
            } else if (got !== undefined) return false
            else n-- // a miss does not count either
          }
          if (lru.size > max) return false
          // Whatever the cache dropped was idle for at least max - max/2 of its operations (probes are reads too).
          const idle = max - Math.max(1, Math.floor(max / 2))
          for (const [key, m] of model) {
            if (lru.get(key) === undefined) {
              if (n - m.used < idle) return false
              model.delete(key)
            } else m.used = ++n
          }
        }
        return true
      },
    ),
    { numRuns: 500 },
  )
  t.pass('500 random sequences')
})
