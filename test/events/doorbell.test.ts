/**
 * The doorbell between dispatchers: a ring wakes the others, never the ringer; a
 * running dispatcher announces itself, so another knows it has a peer (and leaves
 * its fan-outs to the shared claims) until three announcement periods pass without
 * one; an announcement wakes nobody.
 */
import t, { type Test } from 'tap'
import { MemoryBus, MemoryHub } from '../../src/bus/memory.js'
import { Doorbell } from '../../src/events/doorbell.js'

const quiet = { warn: () => {} }
/** Until the bus has delivered what was published (it delivers on a later microtask). */
const settle = () => new Promise((resolve) => setTimeout(resolve, 5))

async function pair(t: Test, presenceMs: number) {
  const hub = new MemoryHub()
  const wakes = { a: 0, b: 0 }
  const a = new Doorbell(new MemoryBus('a', hub), 'a', () => wakes.a++, 20, quiet, presenceMs)
  const b = new Doorbell(new MemoryBus('b', hub), 'b', () => wakes.b++, 20, quiet, presenceMs)
  const off = await Promise.all([a.listen(), b.listen()])
  t.teardown(async () => {
    a.close()
    b.close()
    await Promise.all(off.map((f) => f()))
  })
  return { a, b, wakes }
}

t.test('a ring wakes the others at once and the ringer locally', async (t) => {
  const { a, wakes } = await pair(t, 1000)
  a.ring()
  await settle()
  t.same(wakes, { a: 1, b: 1 }, 'a woke itself directly and b through the bus (its echo skipped)')
})

t.test('announcements: a peer is known while it announces, forgotten three periods after it stops; they wake nobody', async (t) => {
  const { a, b, wakes } = await pair(t, 40)
  t.ok(a.alone() && b.alone(), 'nobody announced yet')
  a.announce()
  await settle()
  t.notOk(b.alone(), 'b heard a')
  t.notOk(a.alone(), 'a, just started, does not count as alone before it listened for three periods')
  await new Promise((resolve) => setTimeout(resolve, 130))
  t.ok(a.alone(), 'a does not count itself')
  b.announce()
  await settle()
  t.notOk(a.alone(), 'a heard b')
  t.notOk(b.alone(), 'b, just started, heard a')
  t.same(wakes, { a: 0, b: 0 }, 'announcing woke no dispatcher')
  // a keeps announcing: b still knows it after several periods.
  await new Promise((resolve) => setTimeout(resolve, 200))
  t.notOk(b.alone(), 'still heard after five periods')
  a.silence()
  const silencedAt = Date.now()
  while (!b.alone()) await new Promise((resolve) => setTimeout(resolve, 5))
  t.ok(Date.now() - silencedAt >= 80, `forgotten only after its announcements stopped for a while (${Date.now() - silencedAt} ms)`)
})
