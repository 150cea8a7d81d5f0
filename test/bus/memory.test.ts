import t from 'tap'
import { MemoryBus, MemoryHub } from '../../src/bus/memory.js'
import { busContract, collector } from './contract.js'

busContract(t, async (t) => {
  const hub = new MemoryHub()
  const a = new MemoryBus('a', hub)
  const b = new MemoryBus('b', hub)
  t.teardown(async () => {
    await a.close()
    await b.close()
  })
  return { a, b }
})

t.test('buses on different hubs never see each other', async (t) => {
  const a = new MemoryBus('a')
  const b = new MemoryBus('b')
  const c = collector()
  await b.subscribe('x', c.handler)
  await a.publish('x', 'hello')
  await new Promise((r) => setTimeout(r, 50))
  t.equal(c.got.length, 0)
})

t.test('handlers run after publish returns, never inline', async (t) => {
  const a = new MemoryBus('a')
  let ran = false
  await a.subscribe('x', () => {
    ran = true
  })
  const published = a.publish('x', 'y')
  t.equal(ran, false)
  await published
  await new Promise((r) => setImmediate(r))
  t.equal(ran, true)
})
