/** The pure text helpers of tasksync/react: the op of one edit, and a caret moved through another's op. */
import t from 'tap'
import fc from 'fast-check'
import { type as otText } from 'ot-text-unicode'
import { editOp, toCodePoints, toUtf16, transformCaret } from '../../src/react/text.js'
import { taskType } from '../../src/domain/index.js'

const apply = (s: string, op: unknown[]) => (op.length ? (otText.apply(s, op as never) as string) : s)
const text = fc.string({ unit: fc.constantFrom('a', 'b', ' ', 'é', '😀', 'x'), maxLength: 12 })

t.test('editOp(before, after, caret) turns before into after with a valid, canonical op', async (t) => {
  fc.assert(
    fc.property(text, text, fc.nat(30), (before, after, c) => {
      const op = editOp(before, after, Math.min(c, after.length))
      t.equal(apply(before, op), after)
      // The op type accepts it as it is (no zero skip, no empty insert, no trailing skip).
      taskType.apply({ ...taskType.create(), title: before }, { title: op as never })
    }),
    { numRuns: 500 },
  )
})

t.test('editOp places typed text where the caret says when the text alone is ambiguous', async (t) => {
  t.same(editOp('aa', 'aaa', 1), ['a'], 'typed at the start')
  t.same(editOp('aa', 'aaa', 3), [2, 'a'], 'typed at the end')
  t.same(editOp('aaa', 'aa', 0), [{ d: 1 }], 'delete forward at the start')
  t.same(editOp('aaa', 'aa', 2), [2, { d: 1 }], 'backspace at the end')
  t.same(editOp('a😀b', 'a😀xb', 4), [2, 'x'], 'positions in code points')
})

t.test('transformCaret: edits before the caret move it, edits after it or at it leave it', async (t) => {
  t.equal(transformCaret(3, ['ab']), 5, 'insert at the start')
  t.equal(transformCaret(3, [3, 'ab']), 3, 'insert at the caret lands after it')
  t.equal(transformCaret(3, [5, 'ab']), 3, 'insert after')
  t.equal(transformCaret(3, [1, { d: 1 }]), 2, 'delete before')
  t.equal(transformCaret(3, [1, { d: 5 }]), 1, 'delete across the caret')
  fc.assert(
    fc.property(text, text, fc.nat(20), (s, ins, p) => {
      const len = toCodePoints(s, s.length)
      const pos = Math.min(p, len)
      const at = Math.min(p % (len + 1), len)
      if (!ins) return
      const op = editOp(s, s.slice(0, toUtf16(s, at)) + ins + s.slice(toUtf16(s, at)))
      const moved = transformCaret(pos, op)
      const after = apply(s, op)
      // The characters before the caret are the same ones, with the insert counted only when it was before.
      t.ok(moved >= pos && moved <= toCodePoints(after, after.length))
    }),
    { numRuns: 300 },
  )
})
