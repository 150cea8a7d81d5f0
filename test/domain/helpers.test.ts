/**
 * The pure helpers around the op type: initial content, the creation op,
 * PATCH to op, history changes, text diff, isIdentity.
 */
import t from 'tap'
import fc from 'fast-check'
import { deepStrictEqual } from 'node:assert/strict'
import { type as otText } from 'ot-text-unicode'
import {
  contentFromInit,
  creationOp,
  historyChanges,
  isIdentity,
  opFromPatch,
  taskType as T,
  textDiff,
  type TaskContent,
} from '../../src/domain/index.js'
import { content, text } from './gen.js'

const U1 = '0b6f3c4e-8a7d-4f8e-9c3a-1d2e3f4a5b6c'

t.test('contentFromInit validates a create and fills the rest from create()', async (t) => {
  const c = contentFromInit({
    title: 'Ship 😀',
    status: 'in_progress',
    priority: 3,
    tags: ['b', 'a', 'b'],
    assigneeId: U1.toUpperCase(),
    dueAt: '2026-12-01T01:00:00+01:00',
    customFields: { estimate: 3, nested: { a: [1, null] } },
  })
  t.same(c, {
    ...T.create(),
    title: 'Ship 😀',
    status: 'in_progress',
    priority: 3,
    tags: ['a', 'b'],
    assigneeId: U1,
    dueAt: '2026-12-01T00:00:00.000Z',
    customFields: { estimate: 3, nested: { a: [1, null] } },
  })
  t.same(contentFromInit({}), T.create())
  t.same(T.create({ title: 'x' }), { ...T.create(), title: 'x' }, 'create(init) as ShareDB calls it')
  t.throws(() => contentFromInit({ title: 'x'.repeat(1001) }), { name: 'InvalidOpError', path: 'title' })
  t.throws(() => contentFromInit({ deleted: true }), { name: 'InvalidOpError', path: 'task', message: /unknown key "deleted"/ })
  t.throws(() => contentFromInit({ status: 'open' }), { name: 'InvalidOpError', path: 'status' })
  t.throws(() => contentFromInit({ tags: 'a' }), { name: 'InvalidOpError', path: 'tags' })
  t.throws(() => contentFromInit({ tags: ['ok', ''] }), { name: 'InvalidOpError', path: 'tags[1]' })
  t.throws(() => contentFromInit({ customFields: { k: { deep: [[[[[[[[1]]]]]]]] } } }), { name: 'InvalidOpError', path: /^customFields\.k/ })
  t.throws(() => contentFromInit(JSON.parse('{"customFields": {"__proto__": 1}}')), { name: 'InvalidOpError', path: 'customFields.__proto__' })
  t.throws(() => contentFromInit(null), { name: 'InvalidOpError', path: 'task' })
  t.throws(() => contentFromInit({ dueAt: 'tomorrow' }), { name: 'InvalidOpError', path: 'dueAt' })
})

t.test('creationOp: replaying it from create() gives the content', async (t) => {
  t.doesNotThrow(() =>
    fc.assert(
      fc.property(content, (c) => {
        deepStrictEqual(T.apply(T.create(), creationOp(c)), c)
      }),
      { seed: 42, numRuns: 200 },
    ),
  )
  t.same(creationOp(T.create()), {}, 'an empty task is created by the identity op')
  t.same(creationOp({ ...T.create(), deleted: true }), { delete: true })
  t.same(creationOp(contentFromInit({ title: 'a', tags: ['x'], customFields: { k: null } })), {
    title: ['a'],
    tags: { add: ['x'] },
    customFields: { k: { set: null } },
  })
})

t.test('opFromPatch turns plain values into a minimal op against the current content', async (t) => {
  const cur: TaskContent = { ...T.create(), title: 'Fix the bug', tags: ['api', 'bug'], customFields: { estimate: 3, risk: 'low' }, priority: 2 }
  t.same(opFromPatch(cur, { title: 'Fix the login bug' }), { title: [8, 'login '] })
  t.same(opFromPatch(cur, { title: 'Fix the bug' }), {}, 'unchanged fields are left out')
  t.same(opFromPatch(cur, { tags: ['bug', 'ui', 'ui'] }), { tags: { add: ['ui'], remove: ['api'] } }, 'tags replaces the set')
  t.same(opFromPatch(cur, { customFields: { estimate: 5, risk: null, gone: null } }), {
    customFields: { estimate: { set: 5 }, risk: { unset: true } },
  })
  t.same(opFromPatch(cur, { customFields: { estimate: 3 } }), {})
  t.same(opFromPatch(cur, { status: 'done', priority: 2, assigneeId: U1, dueAt: '2026-12-01T00:00:00+00:00', projectId: null }), {
    status: { set: 'done' },
    assigneeId: { set: U1 },
    dueAt: { set: '2026-12-01T00:00:00.000Z' },
  })
  const next = T.apply(cur, opFromPatch(cur, { description: 'new 😀', title: '' }))
  t.equal(next.description, 'new 😀')
  t.equal(next.title, '')
  t.throws(() => opFromPatch(cur, { title: 3 }), { name: 'InvalidOpError', path: 'title' })
  t.throws(() => opFromPatch(cur, { deleted: true }), { name: 'InvalidOpError', path: 'patch' })
  t.throws(() => opFromPatch(cur, { priority: 7 }), { name: 'InvalidOpError', path: 'priority' })
  t.throws(() => opFromPatch(cur, { title: 'x'.repeat(1001) }), { name: 'InvalidOpError', path: 'title' }, 'limits as the commit checks them')
})

t.test('textDiff: one edit span in code points, never splitting a surrogate pair', async (t) => {
  t.same(textDiff('abc', 'abc'), [])
  t.same(textDiff('', 'x'), ['x'])
  t.same(textDiff('😀a', '😀b'), [1, { d: 1 }, 'b'])
  t.same(textDiff('\uD83D\uDE00', '\uD83D\uDE01'), [{ d: 1 }, '😁'], 'shared high surrogate is not a shared prefix')
  t.same(textDiff('a😀', 'b😀'), [{ d: 1 }, 'b'])
  t.same(textDiff('aaa', 'aa'), [2, { d: 1 }])
  t.doesNotThrow(() =>
    fc.assert(
      fc.property(text, text, (a, b) => {
        if (otText.apply(a, textDiff(a, b) as never) !== b) throw new Error(`diff ${a} → ${b}`)
      }),
      { seed: 42, numRuns: 1000 },
    ),
  )
})

t.test('historyChanges lists what differs', async (t) => {
  const before = T.create()
  const after = T.apply(before, { title: ['x'], tags: { add: ['a'] }, customFields: { k: { set: 1 } } })
  t.same(historyChanges(before, after), {
    title: { from: '', to: 'x' },
    tags: { from: [], to: ['a'] },
    customFields: { from: {}, to: { k: 1 } },
  })
  t.same(historyChanges(after, { ...after, customFields: { k: 1 } }), {}, 'equal values are not changes')
  t.same(historyChanges(after, T.apply(after, { delete: true })), {
    title: { from: 'x', to: '' },
    tags: { from: ['a'], to: [] },
    customFields: { from: { k: 1 }, to: {} },
    deleted: { from: false, to: true },
  })
})

t.test('isIdentity', async (t) => {
  t.ok(isIdentity({}))
  t.ok(isIdentity({ title: [], description: [7], customFields: {} }))
  t.notOk(isIdentity({ title: ['x'] }))
  t.notOk(isIdentity({ delete: true }))
  t.notOk(isIdentity({ nonsense: 1 }), 'an invalid op is not the identity')
  t.notOk(isIdentity(null))
})
