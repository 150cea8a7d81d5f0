/** Storage adapters: batches apply atomically, values are copies, files are replaced whole. */
import t from 'tap'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileStorage, memoryStorage } from '../../src/client/node.js'
import { Backoff } from '../../src/client/backoff.js'

t.test('memoryStorage keeps copies and deletes with null', async (t) => {
  const s = memoryStorage()
  const value = { a: [1] }
  await s.save({ k: value, gone: 1 })
  value.a.push(2)
  await s.save({ gone: null })
  t.same(await s.load(), { k: { a: [1] } })
})

t.test('fileStorage survives a reopen and leaves no temp files', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tasksync-client-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const path = join(dir, 'state.json')
  const a = fileStorage(path)
  t.same(await a.load(), {}, 'empty before the first save')
  await Promise.all([a.save({ meta: { seq: 1 } }), a.save({ 'task:x': { rev: 2 } }), a.save({ meta: { seq: 2 } })])
  const b = fileStorage(path)
  t.same(await b.load(), { meta: { seq: 2 }, 'task:x': { rev: 2 } }, 'saves applied in order')
  await b.save({ 'task:x': null })
  t.same(JSON.parse(readFileSync(path, 'utf8')), { meta: { seq: 2 } })
  t.same(readdirSync(dir), ['state.json'], 'temp files renamed away')
})

t.test('backoff: full jitter under a doubling ceiling, reset after success', async (t) => {
  const b = new Backoff({ baseMs: 100, maxMs: 1000 }, () => 0.999)
  t.same([b.next(), b.next(), b.next(), b.next(), b.next()], [99, 199, 399, 799, 999])
  b.reset()
  t.equal(b.next(), 99)
  const r = new Backoff({ baseMs: 100, maxMs: 1000 }, () => 0)
  t.equal(r.next(), 0, 'the delay may be anywhere from zero')
})
