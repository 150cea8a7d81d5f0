/**
 * checkOp and apply on bad input: the message names the field and says what
 * is wrong; nothing but InvalidOpError is ever thrown. Limits and dueAt.
 */
import t from 'tap'
import { TaskSyncError } from '../../src/protocol/errors.js'
import { DEFAULT_LIMITS, InvalidOpError, checkOp, makeTaskType, taskType as T, type TaskContent, type TaskOp } from '../../src/domain/index.js'

const task = (fields: Partial<TaskContent> = {}): TaskContent => ({ ...T.create(), ...fields })
const s = task({ title: 'Hello', description: 'abc', tags: ['a'] })

t.test('checkOp names the field and the problem', async (t) => {
  const cases: [unknown, RegExp][] = [
    [null, /^op: must be an object, got null/],
    [[], /^op: must be an object, got an array/],
    ['x', /^op: must be an object/],
    [{ titel: [] }, /^op: unknown key "titel"/],
    [JSON.parse('{"__proto__": {"polluted": true}}'), /^op: unknown key "__proto__"/],
    [{ title: 'Hello' }, /^title: must be a text op/],
    [{ title: [9, 'x'] }, /^title: text op reaches position 9, past the end of the text \(5 code points\)/],
    [{ title: [4, { d: 2 }] }, /^title: text op reaches position 6/],
    [{ title: [0, 'x'] }, /^title\[0\]: a skip must be a positive integer/],
    [{ title: [1.5] }, /^title\[0\]: a skip must be a positive integer/],
    [{ title: [1e300] }, /^title\[0\]: a skip must be a positive integer/],
    [{ title: [''] }, /^title\[0\]: an insert must not be empty/],
    [{ title: ['a\u0000'] }, /^title\[0\]: contains U\+0000/],
    [{ description: [{ d: 'abc' }] }, /^description\[0\]: a delete must be \{d: positive integer\}/],
    [{ description: [{ d: 1, x: 1 }] }, /^description\[0\]: not a text op component/],
    [{ description: [null] }, /^description\[0\]: not a text op component/],
    [{ status: 'done' }, /^status: must be an object/],
    [{ status: { set: 'finished' } }, /^status\.set: unknown status string "finished"/],
    [{ status: { set: 'done', extra: 1 } }, /^status: unknown key "extra"/],
    [{ status: {} }, /^status: must be \{set: value\}/],
    [{ priority: { set: 9 } }, /^priority\.set: priority must be an integer 0\.\.4, got number 9/],
    [{ priority: { set: '2' } }, /^priority\.set: priority must be an integer/],
    [{ priority: { set: 1e400 } }, /^priority\.set: priority must be an integer 0\.\.4, got number Infinity/],
    [{ tags: { add: ['x'], remove: ['x'] } }, /^tags: tag "x" is in both add and remove/],
    [{ tags: {} }, /^tags: needs at least one tag in add or remove/],
    [{ tags: { add: 'x' } }, /^tags\.add: must be an array of tags/],
    [{ tags: { add: [''] } }, /^tags\.add\[0\]: a tag must not be empty/],
    [{ tags: { add: [3] } }, /^tags\.add\[0\]: must be a string/],
    [{ tags: { add: ['x'.repeat(65)] } }, /^tags\.add\[0\]: tag is 65 code points, over the limit of 64/],
    [{ assigneeId: { set: 'bob' } }, /^assigneeId\.set: must be a UUID or null/],
    [{ projectId: { set: 42 } }, /^projectId\.set: must be a UUID or null/],
    [{ dueAt: { set: '2026-12-01' } }, /^dueAt\.set: must be an RFC 3339 date-time/],
    [{ dueAt: { set: '2026-12-01T00:00:00' } }, /^dueAt\.set: must be an RFC 3339 date-time/],
    [{ dueAt: { set: '2026-02-30T00:00:00Z' } }, /^dueAt\.set: no such date/],
    [{ dueAt: { set: '2026-12-31T23:59:60Z' } }, /^dueAt\.set: no such time .*leap seconds/],
    [{ dueAt: { set: '2026-12-01T00:00:00+24:00' } }, /^dueAt\.set: bad UTC offset/],
    [{ dueAt: { set: 1764547200000 } }, /^dueAt\.set: must be an RFC 3339 date-time/],
    [{ dueAt: { set: '0000-01-01T00:30:00+01:00' } }, /^dueAt\.set: .*outside years 0000\.\.9999/],
    [{ customFields: [] }, /^customFields: must be an object/],
    [{ customFields: { k: 3 } }, /^customFields\.k: must be an object/],
    [{ customFields: { k: { value: 3 } } }, /^customFields\.k: unknown key "value"/],
    [{ customFields: { k: { set: 1, unset: true } } }, /^customFields\.k: must be \{set: value\} or \{unset: true\}/],
    [{ customFields: { k: { unset: false } } }, /^customFields\.k\.unset: must be true/],
    [{ customFields: { '': { set: 1 } } }, /^customFields\.: a custom field key must be 1\.\.64 code points/],
    [JSON.parse('{"customFields": {"__proto__": {"set": 1}}}'), /^customFields\.__proto__: the key "__proto__" is not allowed/],
    [JSON.parse('{"customFields": {"k": {"set": {"__proto__": 1}}}}'), /^customFields\.k\.set: the key "__proto__" is not allowed/],
    [{ customFields: { k: { set: 'x'.repeat(40_000) } } }, /^customFields\.k\.set: value is 40002 bytes serialized, over the limit of 32768/],
    [{ customFields: { k: { set: [[[[[[[[[1]]]]]]]]] } } }, /^customFields\.k\.set(\[0\])+: nested deeper than 8 levels/],
    [{ customFields: { k: { set: NaN } } }, /^customFields\.k\.set: numbers must be finite/],
    [{ customFields: { k: { set: undefined } } }, /^customFields\.k\.set: not a JSON value: undefined/],
    [{ customFields: { k: { set: new Date(0) } } }, /^customFields\.k\.set: not a JSON value: an object/],
    [{ delete: false }, /^delete: must be true, got boolean false/],
    [{ delete: 'yes' }, /^delete: must be true/],
    [{ title: ['x'.repeat(300_000)] }, /^op: is \d+ bytes of JSON, over the limit of 262144/],
  ]
  for (const [op, re] of cases) t.match(checkOp(s, op), re, JSON.stringify(op)?.slice(0, 80) ?? String(op))
  t.equal(checkOp(s, { title: [5, ' world'], tags: { add: ['b'] } }), null)
  t.equal(checkOp(s, {}), null)
  t.equal(({} as Record<string, unknown>).polluted, undefined, 'no prototype was polluted')
})

t.test('apply throws InvalidOpError, a TaskSyncError with code invalid_op and a path', async (t) => {
  const err = t.throws(() => T.apply(s, { priority: { set: 9 } } as TaskOp)) as InvalidOpError
  t.ok(err instanceof InvalidOpError)
  t.ok(err instanceof TaskSyncError)
  t.equal(err.code, 'invalid_op')
  t.equal(err.status, 422)
  t.equal(err.path, 'priority.set')
  t.throws(() => T.apply(null as unknown as TaskContent, {}), { name: 'InvalidOpError', path: 'snapshot' })
  t.throws(() => T.apply({ title: 1 } as unknown as TaskContent, {}), { name: 'InvalidOpError', path: 'snapshot' })
  t.throws(() => T.transform({}, {}, 'up' as 'left'), TypeError, 'a bad side is a programming error')
  const cyclic: Record<string, unknown> = { title: ['x'] }
  cyclic.self = cyclic
  t.match(checkOp(s, cyclic), /^op: unknown key "self"/)
  const big = 10n
  t.match(checkOp(s, { priority: { set: big } }), /^priority\.set: priority must be an integer 0\.\.4, got bigint/)
})

t.test('dueAt: any RFC 3339 offset, stored as the UTC instant with milliseconds', async (t) => {
  const due = (x: string) => T.apply(s, { dueAt: { set: x } }).dueAt
  t.equal(due('2026-12-01T00:00:00Z'), '2026-12-01T00:00:00.000Z')
  t.equal(due('2026-12-01T01:00:00+01:00'), '2026-12-01T00:00:00.000Z')
  t.equal(due('2026-11-30T19:30:00-04:30'), '2026-12-01T00:00:00.000Z')
  t.equal(due('2026-12-01t05:45:00.5+05:45'), '2026-12-01T00:00:00.500Z', 'lower-case t, a fraction')
  t.equal(due('2026-12-01T00:00:00.123456789z'), '2026-12-01T00:00:00.123Z', 'sub-millisecond digits are truncated')
  t.equal(due('2026-12-01T00:00:00-00:00'), '2026-12-01T00:00:00.000Z')
  t.equal(due('2024-02-29T23:00:00-02:00'), '2024-03-01T01:00:00.000Z', 'leap day, across a month')
  t.equal(due('0050-06-01T00:00:00Z'), '0050-06-01T00:00:00.000Z', 'years below 100 stay as they are')
  t.equal(T.apply(s, { dueAt: { set: null } }).dueAt, null)
  t.same(T.normalize({ dueAt: { set: '2026-12-01T02:00:00+02:00' } }), { dueAt: { set: '2026-12-01T00:00:00.000Z' } })
})

t.test('UUIDs are kept lower-case', async (t) => {
  const id = '0B6F3C4E-8A7D-4F8E-9C3A-1D2E3F4A5B6C'
  t.equal(T.apply(s, { assigneeId: { set: id } }).assigneeId, id.toLowerCase())
  t.same(T.normalize({ projectId: { set: id } }), { projectId: { set: id.toLowerCase() } })
})

t.test('limits: defaults, counted in code points, enforced when a field grows', async (t) => {
  t.equal(checkOp(s, { title: [{ d: 5 }, '😀'.repeat(1000)] }), null, '1000 emoji are 1000 code points')
  t.match(checkOp(s, { title: [{ d: 5 }, '😀'.repeat(1001)] }), /^title: text would be 1001 code points, over the limit of 1000/)
  t.match(checkOp(s, { description: ['e\u0301'.repeat(50_000) + 'x'] }), /^description: text would be 100004 code points, over the limit of 100000/)
  const tags50 = Array.from({ length: 50 }, (_, i) => `t${i}`)
  const full = T.apply(task(), { tags: { add: tags50 } })
  t.equal(full.tags.length, 50)
  t.match(checkOp(full, { tags: { add: ['one-more'] } }), /^tags: task would have 51 tags, over the limit of 50/)
  t.equal(checkOp(full, { tags: { add: ['one-more'], remove: ['t1'] } }), null, 'swapping one keeps 50')
  const keys64 = Object.fromEntries(Array.from({ length: 64 }, (_, i) => [`k${i}`, { set: i }]))
  const many = T.apply(task(), { customFields: keys64 })
  t.match(checkOp(many, { customFields: { k64: { set: 1 } } }), /^customFields: task would have 65 custom fields, over the limit of 64/)
  t.equal(checkOp(many, { customFields: { k1: { set: 'changed' } } }), null)
  t.match(checkOp(task(), { customFields: { ...keys64, k64: { set: 1 } } }), /^customFields: edits 65 keys, over the limit of 64/)
  t.equal(checkOp(task(), { customFields: { k: { set: 'x'.repeat(32 * 1024 - 2) } } }), null, 'exactly 32 KiB serialized')
})

t.test('configured limits (makeTaskType)', async (t) => {
  const small = makeTaskType({ ...DEFAULT_LIMITS, titleMax: 5, tagsMax: 2, tagLengthMax: 3, customFieldsMax: 1, customFieldValueBytesMax: 16, customFieldDepthMax: 1, opBytesMax: 100 })
  t.equal(small.limits.titleMax, 5)
  t.throws(() => small.apply(task(), { title: ['123456'] }), { name: 'InvalidOpError', path: 'title' })
  t.same(small.apply(task(), { title: ['12345'] }).title, '12345')
  t.throws(() => small.apply(task(), { tags: { add: ['abcd'] } }), { name: 'InvalidOpError', path: 'tags.add[0]' })
  t.throws(() => small.apply(task(), { tags: { add: ['a', 'b', 'c'] } }), { name: 'InvalidOpError', path: 'tags' })
  t.throws(() => small.apply(task(), { customFields: { k: { set: [[1]] } } }), { name: 'InvalidOpError', path: 'customFields.k.set[0]' })
  t.throws(() => small.apply(task(), { customFields: { k: { set: 'x'.repeat(15) } } }), { name: 'InvalidOpError', path: 'customFields.k.set' })
  t.match(checkOp(task(), { title: ['x'.repeat(200)] }, small.limits), /^op: is 214 bytes of JSON, over the limit of 100/)
  // A snapshot already over a lowered limit can still shrink.
  const long = task({ title: 'x'.repeat(10), tags: ['a', 'b', 'c'] })
  t.equal(small.apply(long, { title: [{ d: 2 }] }).title, 'x'.repeat(8))
  t.same(small.apply(long, { tags: { remove: ['a'] } }).tags, ['b', 'c'])
  t.throws(() => small.apply(long, { title: ['y'] }), { name: 'InvalidOpError', path: 'title' })
  // Ops committed before a limit was lowered still rebase: transform and compose do not enforce per-value limits.
  const old: TaskOp = { tags: { add: ['long-tag'] }, customFields: { k: { set: 'x'.repeat(40) } } }
  t.same(small.transform(old, { title: ['a'] }, 'left'), old)
  t.same(small.transform({ tags: { remove: ['long-tag'] } }, old, 'left'), {})
  t.same(small.compose(old, { priority: { set: 1 } }), { ...old, priority: { set: 1 } })
  t.throws(() => small.apply(task(), old), { name: 'InvalidOpError', path: 'tags.add[0]' })
  t.same(T.limits, DEFAULT_LIMITS)
})
