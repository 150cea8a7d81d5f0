/**
 * The Bus contract, run against every implementation (memory.test.ts, redis.test.ts).
 * `make` returns two buses of one deployment: what one publishes, both receive.
 */
import type { Test } from 'tap'
import type { Bus } from '../../src/bus/types.js'

export type MakeBuses = (t: Test) => Promise<{ a: Bus; b: Bus }>

/** Collects messages of one handler; `until(n)` resolves when n have arrived (or fails after 5 s). */
export function collector() {
  const got: Array<{ payload: string; channel: string }> = []
  let wake: (() => void) | undefined
  const handler = (payload: string, channel: string) => {
    got.push({ payload, channel })
    wake?.()
  }
  const until = async (n: number, ms = 5000) => {
    const deadline = Date.now() + ms
    while (got.length < n) {
      if (Date.now() > deadline) throw new Error(`expected ${n} messages, got ${got.length}`)
      await new Promise<void>((resolve) => {
        wake = resolve
        setTimeout(resolve, 50)
      })
    }
    return got
  }
  return { got, handler, until }
}

const settle = (ms = 150) => new Promise((r) => setTimeout(r, ms))

export function busContract(t: Test, make: MakeBuses): void {
  t.test('a publication reaches subscribers on every instance, the publisher included', async (t) => {
    const { a, b } = await make(t)
    t.equal(a.status(), 'up')
    const onA = collector()
    const onB = collector()
    await a.subscribe('org:1', onA.handler)
    await b.subscribe('org:1', onB.handler)
    await a.publish('org:1', '{"x":1}')
    t.same(await onB.until(1), [{ payload: '{"x":1}', channel: 'org:1' }])
    t.same(await onA.until(1), [{ payload: '{"x":1}', channel: 'org:1' }], 'the publisher hears itself: it skips by instanceId')
  })

  t.test('one publisher’s messages arrive in publication order', async (t) => {
    const { a, b } = await make(t)
    const c = collector()
    await b.subscribe('ordered', c.handler)
    const n = 300
    await Promise.all(Array.from({ length: n }, (_, i) => a.publish('ordered', String(i))))
    const got = await c.until(n)
    t.same(got.map((m) => Number(m.payload)), Array.from({ length: n }, (_, i) => i))
  })

  t.test('channels are separate; several handlers each receive; unsubscribe is exact', async (t) => {
    const { a, b } = await make(t)
    const one = collector()
    const two = collector()
    const other = collector()
    const off1 = await b.subscribe('ch', one.handler)
    await b.subscribe('ch', two.handler)
    await b.subscribe('other', other.handler)
    await a.publish('ch', 'first')
    await one.until(1)
    await two.until(1)
    await off1()
    await off1() // twice is harmless
    await a.publish('ch', 'second')
    await two.until(2)
    await settle()
    t.same(one.got.map((m) => m.payload), ['first'], 'an unsubscribed handler hears nothing more')
    t.same(two.got.map((m) => m.payload), ['first', 'second'])
    t.equal(other.got.length, 0, 'another channel hears nothing')
  })

  t.test('the same function subscribed twice is two subscriptions', async (t) => {
    const { a } = await make(t)
    const c = collector()
    const off = await a.subscribe('dup', c.handler)
    await a.subscribe('dup', c.handler)
    await a.publish('dup', 'm')
    await c.until(2)
    await off()
    await a.publish('dup', 'n')
    await c.until(3)
    await settle()
    t.same(c.got.map((m) => m.payload), ['m', 'm', 'n'])
  })

  t.test('a throwing handler does not stop the others', async (t) => {
    const { a, b } = await make(t)
    const c = collector()
    await b.subscribe('boom', () => {
      throw new Error('handler bug')
    })
    await b.subscribe('boom', c.handler)
    await a.publish('boom', '1')
    await a.publish('boom', '2')
    t.same((await c.until(2)).map((m) => m.payload), ['1', '2'])
  })

  t.test('after close: status down, publish and subscribe reject', async (t) => {
    const { a, b } = await make(t)
    const c = collector()
    await b.subscribe('after', c.handler)
    await a.close()
    t.equal(a.status(), 'down')
    await t.rejects(a.publish('after', 'x'), { name: 'BusUnavailableError' })
    await t.rejects(a.subscribe('after', () => {}), { name: 'BusUnavailableError' })
    await settle()
    t.equal(c.got.length, 0)
    t.equal(b.status(), 'up', 'the other instance is unaffected')
  })
}
