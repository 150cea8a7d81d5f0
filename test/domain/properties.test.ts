/**
 * Property tests of the op type over random tasks and random valid ops
 * (fixed seed, so a failure reproduces).
 */
import t, { type Test } from 'tap'
import fc from 'fast-check'
import { deepStrictEqual } from 'node:assert/strict'
import { DEFAULT_LIMITS, InvalidOpError, checkOp, makeTaskType, taskType as T, type TaskContent, type TaskOp } from '../../src/domain/index.js'
import { buildOp, content, deepFreeze, rawOp, type RawOp } from './gen.js'

fc.configureGlobal({ seed: 42, numRuns: 400 })

/** A content and ops built one after another on it (each valid on the result of the ones before). */
const sequence = (raws: RawOp[], s: TaskContent) => {
  const ops: TaskOp[] = []
  for (const raw of raws) {
    const op = buildOp(s, raw)
    ops.push(op)
    s = T.apply(s, op)
  }
  return { ops, end: s }
}
const pair = fc.tuple(content, rawOp, rawOp).map(([s, a, b]) => ({ s, a: buildOp(s, a), b: buildOp(s, b) }))
const lists = fc
  .tuple(content, fc.array(rawOp, { maxLength: 4 }), fc.array(rawOp, { maxLength: 4 }))
  .map(([s, server, client]) => ({ s, server: sequence(server, s), client: sequence(client, s) }))

/** One tap assertion per property: fc.assert throws with the shrunk counterexample. */
const holds = <Ts extends unknown[]>(t: Test, name: string, prop: fc.IProperty<Ts>) =>
  t.doesNotThrow(() => fc.assert(prop), name)

t.test('compose: apply(compose(a, b)) equals apply(apply(a), b)', async (t) => {
  const arb = fc.tuple(content, rawOp, rawOp).map(([s, ra, rb]) => {
    const a = buildOp(s, ra)
    return { s, a, b: buildOp(T.apply(s, a), rb) }
  })
  holds(t, 'compose', fc.property(arb, ({ s, a, b }) => {
    deepStrictEqual(T.apply(s, T.compose(a, b)), T.apply(T.apply(s, a), b))
  }))
  holds(t, 'compose with {} is the op', fc.property(pair, ({ a }) => {
    deepStrictEqual(T.compose(a, {}), T.normalize(a))
    deepStrictEqual(T.compose({}, a), T.normalize(a))
  }))
})

t.test('convergence of one pair of concurrent ops, both sides', async (t) => {
  holds(t, 'a committed after b', fc.property(pair, ({ s, a, b }) => {
    deepStrictEqual(T.apply(T.apply(s, b), T.transform(a, b, 'left')), T.apply(T.apply(s, a), T.transform(b, a, 'right')))
  }))
  holds(t, 'b committed after a', fc.property(pair, ({ s, a, b }) => {
    deepStrictEqual(T.apply(T.apply(s, a), T.transform(b, a, 'left')), T.apply(T.apply(s, b), T.transform(a, b, 'right')))
  }))
  holds(t, 'a concurrent delete wins', fc.property(pair, ({ s, a }) => {
    deepStrictEqual(T.transform(a, { delete: true }, 'left'), {})
    deepStrictEqual(T.apply(T.apply(s, a), T.transform({ delete: true }, a, 'right')), { ...T.create(), deleted: true })
  }))
})

t.test('convergence of op lists transformed pairwise, as server and client do', async (t) => {
  holds(t, 'lists', fc.property(lists, ({ s, server, client }) => {
    // The server transforms each pending client op against every committed op
    // ('left'); the client transforms each received op against its pending ones ('right').
    let pending = client.ops
    const received: TaskOp[] = []
    for (let committed of server.ops) {
      const next: TaskOp[] = []
      for (const c of pending) {
        next.push(T.transform(c, committed, 'left'))
        committed = T.transform(committed, c, 'right')
      }
      pending = next
      received.push(committed)
    }
    const atServer = pending.reduce(T.apply, server.end)
    const atClient = received.reduce(T.apply, client.end)
    deepStrictEqual(atServer, atClient)
  }))
})

t.test('normalize', async (t) => {
  holds(t, 'is idempotent and keeps the effect', fc.property(pair, ({ s, a }) => {
    const n = T.normalize(a)
    deepStrictEqual(T.normalize(n), n)
    deepStrictEqual(T.apply(s, n), T.apply(s, a))
    deepStrictEqual(JSON.parse(JSON.stringify(n)), n)
  }))
  holds(t, 'transform and compose answer normalized ops', fc.property(pair, ({ a, b }) => {
    for (const op of [T.transform(a, b, 'left'), T.transform(a, b, 'right'), T.compose(a, b)]) {
      deepStrictEqual(T.normalize(op), op)
    }
  }))
})

t.test('no function mutates its inputs', async (t) => {
  holds(t, 'frozen inputs', fc.property(pair, ({ s, a, b }) => {
    const copy = structuredClone({ s, a, b })
    deepFreeze(s)
    deepFreeze(a)
    deepFreeze(b)
    const out = T.apply(s, a)
    T.transform(a, b, 'left')
    T.transform(b, a, 'right')
    T.compose(a, b)
    T.normalize(a)
    checkOp(s, a)
    deepStrictEqual({ s, a, b }, copy)
    if (!a.delete && Object.keys(T.normalize(a)).length > 0) deepStrictEqual(out === s, false)
  }))
})

// Random JSON: mostly garbage, sometimes a valid op by luck. Never anything but InvalidOpError.
const keyed = fc.dictionary(
  fc.constantFrom('title', 'description', 'status', 'priority', 'tags', 'assigneeId', 'dueAt', 'projectId', 'customFields', 'delete', '__proto__', 'x'),
  fc.oneof(
    fc.jsonValue(),
    fc.anything(),
    fc.record({ set: fc.jsonValue() }),
    fc.record({ add: fc.jsonValue(), remove: fc.jsonValue() }),
    fc.array(fc.oneof(fc.integer(), fc.string(), fc.record({ d: fc.jsonValue() }), fc.double())),
    fc.dictionary(fc.string(), fc.oneof(fc.record({ set: fc.anything() }), fc.record({ unset: fc.jsonValue() }))),
  ),
)
const garbage = fc.oneof(fc.anything(), fc.jsonValue(), keyed, keyed.map((o) => JSON.parse(JSON.stringify(o)) as unknown))

t.test('invalid input is rejected with InvalidOpError and nothing else', async (t) => {
  holds(t, 'random JSON', fc.property(content, garbage, (s, op) => {
    const message = checkOp(s, op)
    let applied: TaskContent | undefined
    try {
      applied = T.apply(s, op as TaskOp)
    } catch (e) {
      if (!(e instanceof InvalidOpError)) throw e
      if (message === null) throw new Error(`checkOp accepted what apply rejects: ${e.message}`)
      return
    }
    if (message !== null) throw new Error(`apply accepted what checkOp rejects: ${message}`)
    deepStrictEqual(T.apply(s, T.normalize(op as TaskOp)), applied)
  }))
  holds(t, 'transform, compose, normalize', fc.property(garbage, pair, (x, { a }) => {
    for (const f of [() => T.transform(x as TaskOp, a, 'left'), () => T.transform(a, x as TaskOp, 'right'), () => T.compose(x as TaskOp, a), () => T.normalize(x as TaskOp)]) {
      try {
        f()
      } catch (e) {
        if (!(e instanceof InvalidOpError)) throw e
      }
    }
  }))
})

t.test('applyNormalized of a normalized op is apply (the sequencer skips the second read)', async (t) => {
  holds(
    t,
    'same content, or the same refusal',
    fc.property(content, rawOp, (s, raw) => {
      const op = T.normalize(buildOp(s, raw))
      let expected: TaskContent | string
      try {
        expected = T.apply(s, op)
      } catch (e) {
        expected = (e as Error).message
      }
      let got: TaskContent | string
      try {
        got = T.applyNormalized(s, op)
      } catch (e) {
        got = (e as Error).message
      }
      deepStrictEqual(got, expected)
    }),
  )
})

t.test('what transform and compose answer is canonical (the type takes it back without reading it again)', async (t) => {
  // A type of its own: the ops of the other tests are not remembered by it.
  const U = makeTaskType(DEFAULT_LIMITS)
  holds(t, 'transform and compose are fixed points of normalize', fc.property(pair, ({ a, b }) => {
    for (const out of [U.transform(a, b, 'left'), U.transform(a, b, 'right'), U.transform(b, a, 'left'), U.compose(a, b), U.compose(b, a)]) {
      deepStrictEqual(out, U.normalize(structuredClone(out)))
    }
  }))
  holds(t, 'rebasing with remembered ops gives what reading every op afresh gives', fc.property(lists, ({ s, server, client }) => {
    // As in the lists test, once with U (which takes back its own results unread) and once
    // with a fresh type per call (which reads everything), on copies of the ops.
    const fresh = () => makeTaskType(DEFAULT_LIMITS)
    const run = (transform: (a: TaskOp, b: TaskOp, side: 'left' | 'right') => TaskOp, apply: (x: TaskContent, op: TaskOp) => TaskContent) => {
      let pending = client.ops.map((o) => structuredClone(o))
      const received: TaskOp[] = []
      for (let committed of server.ops.map((o) => structuredClone(o))) {
        const next: TaskOp[] = []
        for (const c of pending) {
          next.push(transform(c, committed, 'left'))
          committed = transform(committed, c, 'right')
        }
        pending = next
        received.push(committed)
      }
      return { pending, atServer: pending.reduce(apply, server.end), atClient: received.reduce(apply, client.end) }
    }
    const remembered = run(U.transform, U.apply)
    const read = run(
      (a, b, side) => fresh().transform(structuredClone(a), structuredClone(b), side),
      (x, op) => fresh().apply(x, structuredClone(op)),
    )
    deepStrictEqual(remembered, read)
    deepStrictEqual(remembered.atServer, remembered.atClient)
  }))
})
