/**
 * Property tests of per-user undo in the op type (invertOp, transformUndo)
 * over random tasks and random histories: my op, then ops of others
 * committed after it, then my undo moved past them (fixed seed).
 */
import t, { type Test } from 'tap'
import fc from 'fast-check'
import { deepStrictEqual, equal } from 'node:assert/strict'
import { invertOp, taskType as T, transformUndo, type TaskContent, type TaskOp } from '../../src/domain/index.js'
import { buildOp, buildText, content, rawOp, type RawOp } from './gen.js'

fc.configureGlobal({ seed: 16, numRuns: 400 })

const holds = <Ts extends unknown[]>(t: Test, name: string, prop: fc.IProperty<Ts>) =>
  t.doesNotThrow(() => fc.assert(prop), name)

const noDelete = (raw: RawOp): RawOp => ({ ...raw, delete: undefined })

/** `s`, my op `mine` on it, then `later` ops of others one after another; `undo` is mine moved past them. */
const history = fc.tuple(content, rawOp, fc.array(rawOp, { maxLength: 4 })).map(([s, rm, rl]) => {
  const mine = T.normalize(buildOp(s, noDelete(rm)))
  let undo = invertOp(mine, s)
  const afterMine = T.apply(s, mine)
  let now = afterMine
  const later: TaskOp[] = []
  for (const raw of rl) {
    const op = T.normalize(buildOp(now, noDelete(raw)))
    later.push(op)
    undo = transformUndo(undo, op).undo
    now = T.apply(now, op)
  }
  return { s, mine, afterMine, later, end: now, undo }
})

t.test('invertOp: an op then its inverse gives the content back', async (t) => {
  const arb = fc.tuple(content, rawOp).map(([s, raw]) => ({ s, op: T.normalize(buildOp(s, noDelete(raw))) }))
  holds(t, 'inverse', fc.property(arb, ({ s, op }) => {
    deepStrictEqual(T.apply(T.apply(s, op), invertOp(op, s)), T.apply(s, {}))
  }))
  t.throws(() => invertOp({ delete: true }, T.create()), { name: 'InvalidOpError' }, 'a delete has no inverse')
  t.same(invertOp({ status: { set: 'todo' } }, T.create()), {}, 'a set to the value already there undoes nothing')
})

t.test('transformUndo: later past the undo and the undo past later meet', async (t) => {
  const arb = fc.tuple(content, rawOp, rawOp).map(([s, rm, rl]) => {
    const mine = T.normalize(buildOp(s, noDelete(rm)))
    const S = T.apply(s, mine)
    return { S, undo: invertOp(mine, s), later: T.normalize(buildOp(S, noDelete(rl))) }
  })
  holds(t, 'TP1', fc.property(arb, ({ S, undo, later }) => {
    const m = transformUndo(undo, later)
    deepStrictEqual(T.apply(T.apply(S, later), m.undo), T.apply(T.apply(S, undo), m.later))
  }))
  holds(t, 'without later: the same undo, later as given', fc.property(arb, ({ undo, later }) => {
    const m = transformUndo(undo, later, false)
    deepStrictEqual(m.undo, transformUndo(undo, later).undo)
    deepStrictEqual(m.later, later)
  }))
})

t.test('undo then redo restores the state', async (t) => {
  holds(t, 'redo', fc.property(history, ({ end, undo }) => {
    const undone = T.apply(end, undo)
    deepStrictEqual(T.apply(undone, invertOp(undo, end)), T.apply(end, {}))
  }))
})

t.test('undoing my edit never removes a remote edit, and restores what only I changed', async (t) => {
  holds(t, 'fields', fc.property(history, ({ s, mine, later, end, undo }) => {
    const undone = T.apply(end, undo)
    for (const key of ['status', 'priority', 'assigneeId', 'dueAt', 'projectId'] as const) {
      if (later.some((op) => op[key])) equal(undone[key], end[key], `${key} set by a later op stays`)
      else if (mine[key]) equal(undone[key], s[key], `${key} only I set goes back`)
    }
    const laterTags = new Set(later.flatMap((op) => [...(op.tags?.add ?? []), ...(op.tags?.remove ?? [])]))
    for (const tag of new Set([...s.tags, ...end.tags, ...undone.tags])) {
      if (laterTags.has(tag)) equal(undone.tags.includes(tag), end.tags.includes(tag), `tag ${tag} a later op touched stays`)
      else equal(undone.tags.includes(tag), s.tags.includes(tag), `tag ${tag} goes back`)
    }
    const laterKeys = new Set(later.flatMap((op) => Object.keys(op.customFields ?? {})))
    for (const key of new Set([...Object.keys(s.customFields), ...Object.keys(end.customFields)])) {
      const pick = (c: TaskContent) => (Object.hasOwn(c.customFields, key) ? c.customFields[key] : undefined)
      deepStrictEqual(pick(undone), laterKeys.has(key) ? pick(end) : pick(s), `custom field ${key}`)
    }
  }))
})

// Text with three alphabets: the original is digits, my inserts lower case, others' inserts upper case.
const edits = (alphabet: string) =>
  fc.array(
    fc.record({ pos: fc.nat(), del: fc.nat({ max: 3 }), ins: fc.array(fc.constantFrom(...alphabet), { maxLength: 4 }).map((a) => a.join('')) }),
    { minLength: 1, maxLength: 3 },
  )
const textHistory = (mineInsertsOnly: boolean) =>
  fc
    .tuple(
      fc.array(fc.constantFrom(...'0123456789'), { maxLength: 12 }).map((a) => a.join('')),
      mineInsertsOnly ? edits('abc😀').map((es) => es.map((e) => ({ ...e, del: 0 }))) : edits('abc😀'),
      fc.array(edits('XYZ👩‍💻'), { minLength: 1, maxLength: 4 }),
    )
    .map(([s, mineEdits, laterEdits]) => {
      const mine = buildText(s, mineEdits) ?? []
      const before = { ...T.create(), title: s }
      let undo = invertOp({ title: mine }, before)
      let now = T.apply(before, { title: mine })
      for (const e of laterEdits) {
        const op = { title: buildText(now.title, e) ?? [] }
        undo = transformUndo(undo, T.normalize(op)).undo
        now = T.apply(now, op)
      }
      return { s, end: now.title, undone: T.apply(now, undo).title }
    })
const only = (s: string, re: RegExp) => Array.from(s).filter((c) => re.test(c)).join('')

t.test('text: undo keeps every character others inserted', async (t) => {
  holds(t, 'others stay', fc.property(textHistory(false), ({ end, undone }) => {
    equal(only(undone, /[^0-9a-c😀]/u), only(end, /[^0-9a-c😀]/u))
    equal(only(undone, /[a-c😀]/u), '', 'none of my inserted characters is left')
  }))
})

t.test('text: undo of an insert that others split removes exactly my characters', async (t) => {
  holds(t, 'split', fc.property(textHistory(true), ({ end, undone }) => {
    equal(undone, only(end, /[^a-c😀]/u))
  }))
  // The example by hand: I type "abc", someone types "X" between a and b.
  const s = T.create()
  const mine = { title: ['abc'] }
  const later = { title: [1, 'X'] }
  const undo = transformUndo(invertOp(mine, s), later).undo
  const end = T.apply(T.apply(s, mine), later)
  equal(end.title, 'aXbc')
  equal(T.apply(end, undo).title, 'X')
})
