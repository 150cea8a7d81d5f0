/**
 * load/fast-apply.ts must answer exactly what taskType.apply answers: the same
 * content (deep and in key order) or the same error, for the ops steady sends
 * and for near misses of their shape, on random contents. The fast path must
 * also be the one taken for steady's ops (or the test would compare nothing new).
 */
import { deepStrictEqual, strictEqual } from 'node:assert'
import fc from 'fast-check'
import t from 'tap'
import { taskType } from '../../src/domain/index.js'
import type { TaskContent, TaskOp } from '../../src/domain/types.js'
import { applyKnown, applyOp } from '../../load/fast-apply.js'
import { content as anyContent, jsonValue } from '../domain/gen.js'

type Outcome = { ok: true; value: TaskContent; json: string } | { ok: false; error: string }

function outcome(f: () => TaskContent): Outcome {
  try {
    const value = f()
    return { ok: true, value, json: JSON.stringify(value) }
  } catch (err) {
    return { ok: false, error: `${(err as Error).name}: ${(err as Error).message}` }
  }
}

function same(s: TaskContent, op: unknown): void {
  const before = JSON.stringify(s)
  const want = outcome(() => taskType.apply(s, op as TaskOp))
  const got = outcome(() => applyOp(s, op))
  strictEqual(JSON.stringify(s), before, 'the content is not changed in place')
  if (want.ok && got.ok) {
    deepStrictEqual(got.value, want.value)
    strictEqual(got.json, want.json, 'same keys in the same order')
  } else deepStrictEqual(got, want)
}

const ascii = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 45 })
const asciiContent = fc.tuple(anyContent, ascii).map(([c, title]) => ({ ...c, title }))
/** Contents near the limits: a title of 995..1000 characters, 63 or 64 custom fields. */
const fullContent = fc.tuple(anyContent, fc.integer({ min: 995, max: 1000 }), fc.integer({ min: 62, max: 64 })).map(([c, len, fields]) => ({
  ...c,
  title: 'a'.repeat(len),
  customFields: Object.fromEntries(Array.from({ length: fields }, (_, i) => [`f${i}`, i])),
}))
const deletedContent = anyContent.map((c) => ({ ...c, deleted: true }))
const content: fc.Arbitrary<TaskContent> = fc.oneof({ arbitrary: asciiContent, weight: 4 }, { arbitrary: anyContent, weight: 2 }, { arbitrary: fullContent, weight: 1 }, { arbitrary: deletedContent, weight: 1 })

/** Mostly steady's shape, with every part sometimes off by a little. */
const skip = fc.oneof({ arbitrary: fc.integer({ min: 1, max: 50 }), weight: 15 }, fc.constantFrom(0, -1, 1.5, 2 ** 53, '3', null))
const insert = fc.oneof({ arbitrary: fc.constantFrom('x', 'xy', 'hello world'), weight: 15 }, fc.constantFrom('', '\u0000', 'é', '😀', '\ud800', '\n', 'a\tb'))
const del = fc.oneof(
  { arbitrary: fc.integer({ min: 1, max: 3 }).map((d) => ({ d })), weight: 15 },
  fc.constantFrom({ d: 0 }, { d: -1 }, { d: 1.5 }, { d: '1' }, { d: 1, e: 1 }, {}, [1]),
  fc.integer({ min: 1, max: 2000 }).map((d) => ({ d })),
)
const textOp = fc.oneof(
  { arbitrary: fc.tuple(skip, fc.oneof(insert, del)).map(([s, e]) => [s, e]), weight: 15 },
  { arbitrary: fc.oneof(insert, del).map((e) => [e]), weight: 4 },
  fc.constantFrom([], [3], 'x', null, { d: 1 }),
  fc.tuple(skip, insert, del).map((a) => [...a]),
)
const key = fc.oneof({ arbitrary: fc.constant('lt'), weight: 15 }, fc.constantFrom('', 'f0', 'f63', 'constructor', 'ü', 'k\u0000', 'x'.repeat(64), 'x'.repeat(65)))
const setValue = fc.oneof({ arbitrary: fc.double({ min: 0, max: 2e12, noNaN: true }), weight: 15 }, fc.constantFrom(-0, NaN, Infinity, '1', null, true), jsonValue)
const fieldEdit = fc.oneof(
  { arbitrary: setValue.map((v) => ({ set: v })), weight: 15 },
  fc.constantFrom({ unset: true }, { set: 1, unset: true }, {}, { set: 1, x: 1 }, 5, null),
)
const fields = fc.oneof(
  { arbitrary: fc.tuple(key, fieldEdit).map(([k, e]) => ({ [k]: e })), weight: 15 },
  fc.constantFrom({}, null, [], { lt: { set: 1 }, other: { set: 2 } }),
  // JSON.parse makes "__proto__" an own key.
  fc.constant(JSON.parse('{"__proto__":{"set":1}}')),
)
const op = fc.oneof(
  { arbitrary: fc.record({ title: textOp, customFields: fields }), weight: 15 },
  { arbitrary: fc.record({ customFields: fields, title: textOp }), weight: 1 },
  fc.record({ title: textOp }),
  fc.record({ title: textOp, customFields: fields, status: fc.constant({ set: 'done' }) }),
  fc.constantFrom({}, null, [], { delete: true }, { title: ['x'], customFields: { lt: { set: 1 } }, delete: true }),
  fc.constant(JSON.parse('{"title":["x"],"__proto__":{"lt":{"set":1}}}')),
)

t.test('the same result or the same error as taskType.apply', async (t) => {
  let fast = 0
  let runs = 0
  fc.assert(
    fc.property(content, op, (s, o) => {
      runs++
      if (applyKnown(s, o) !== undefined) fast++
      same(s, o)
    }),
    { numRuns: 50_000 },
  )
  t.ok(fast > runs / 10, `the fast path answered ${fast} of ${runs} cases`)
  t.ok(fast < runs, 'and left the others to taskType.apply')
})

t.test("steady's ops, as the raw worker makes them, take the fast path and give taskType.apply's content", async (t) => {
  // load/worker.ts nextOp: an 'x' at a random position while the title is under 40 code points, then one deleted.
  let fastView = taskType.create()
  let view = taskType.create()
  let seed = 1
  const random = () => ((seed = (seed * 16807) % 2147483647) / 2147483647)
  for (let i = 0; i < 5000; i++) {
    const len = [...view.title].length
    const pos = Math.floor(random() * (len + 1))
    const title = len < 40 ? (pos > 0 ? [pos, 'x'] : ['x']) : pos < len ? (pos > 0 ? [pos, { d: 1 }] : [{ d: 1 }]) : [{ d: 1 }]
    // As it travels: serialized by the writer, parsed by each socket.
    const o = JSON.parse(JSON.stringify({ title, customFields: { lt: { set: 1.7e12 + i + random() } } }))
    const known = applyKnown(fastView, o)
    if (known === undefined) return t.fail(`op ${i} ${JSON.stringify(o)} left to taskType.apply`)
    fastView = known
    view = taskType.apply(view, o)
    if (JSON.stringify(fastView) !== JSON.stringify(view)) return t.fail(`op ${i} diverged`)
  }
  t.strictSame(fastView, view, '5,000 ops later, the same content')
  t.ok(view.title.length >= 39, 'the title grew to its working length')
})
