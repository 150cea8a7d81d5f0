/**
 * Every row of the rules table of PROTOCOL.md section 2, in both commit
 * orders, plus delete-wins and Unicode text.
 */
import t from 'tap'
import { detectConflicts, taskType as T, type TaskContent, type TaskOp } from '../../src/domain/index.js'

const U1 = '0b6f3c4e-8a7d-4f8e-9c3a-1d2e3f4a5b6c'
const U2 = '9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d'
const task = (fields: Partial<TaskContent> = {}): TaskContent => ({ ...T.create(), ...fields })

/**
 * `first` commits, then `later` (transformed 'left' against it, as the server
 * does). Checks that a peer that applied `later` first and then the
 * transformed `first` ('right') ends up equal, and returns the result.
 */
function merged(s: TaskContent, later: TaskOp, first: TaskOp): TaskContent {
  const server = T.apply(T.apply(s, first), T.transform(later, first, 'left'))
  const peer = T.apply(T.apply(s, later), T.transform(first, later, 'right'))
  t.same(peer, server, 'both orders converge')
  return server
}

t.test('title and description: OT keeps both intents', async (t) => {
  const s = task({ title: 'Hello', description: 'one two' })
  t.equal(merged(s, { title: [5, ' world'] }, { title: ['Oh '] }).title, 'Oh Hello world')
  t.equal(merged(s, { title: ['Oh '] }, { title: [5, ' world'] }).title, 'Oh Hello world')
  // Same position: the op transformed with 'left' (the one committed later) goes first.
  t.equal(merged(s, { title: [5, 'A'] }, { title: [5, 'B'] }).title, 'HelloAB')
  t.equal(merged(s, { title: [5, 'B'] }, { title: [5, 'A'] }).title, 'HelloBA')
  // Overlapping deletes remove the union once.
  t.equal(merged(s, { title: [1, { d: 3 }] }, { title: [2, { d: 3 }] }).title, 'H')
  // An insert inside a concurrently deleted range survives.
  t.equal(merged(s, { description: [4, { d: 3 }] }, { description: [5, 'X'] }).description, 'one X')
  t.equal(merged(s, { title: [5, '!'] }, { description: [{ d: 4 }] }).title, 'Hello!')
})

t.test('Unicode text: positions and lengths in code points', async (t) => {
  t.equal(T.apply(task({ title: '😀a' }), { title: [1, 'b'] }).title, '😀ba', 'an emoji is one position')
  t.equal(T.apply(task({ title: 'a😀b' }), { title: [1, { d: 1 }] }).title, 'ab', 'deleting an emoji removes both UTF-16 units')
  t.equal(T.apply(task({ title: 'e\u0301x' }), { title: [2, '!'] }).title, 'e\u0301!x', 'a combining mark is its own code point')
  t.equal(T.apply(task({ title: '𝒳𝒴' }), { title: [2, '𝒵'] }).title, '𝒳𝒴𝒵', 'astral plane')
  t.equal(T.apply(task({ title: '👩‍💻' }), { title: [3, '!'] }).title, '👩‍💻!', 'a ZWJ sequence is three code points')
  t.throws(() => T.apply(task({ title: '😀' }), { title: [2, 'x'] }), { name: 'InvalidOpError', path: 'title' })
  const s = task({ title: 'Çà😀va' })
  t.equal(merged(s, { title: [3, '🎉'] }, { title: [2, { d: 1 }, '👍'] }).title, 'Çà🎉👍va', 'inserts meeting at one position: the later commit first')
  t.equal(merged(s, { title: [{ d: 3 }] }, { title: [3, 'ü'] }).title, 'üva')
  t.throws(() => T.apply(s, { title: ['\uD83D'] }), { name: 'InvalidOpError', path: 'title[0]' }, 'an unpaired surrogate is refused')
  t.throws(() => T.apply(s, { title: [5, '\uDE00'] }), { name: 'InvalidOpError', path: 'title[1]' })
})

t.test('status: the further state wins, whichever commits first', async (t) => {
  const s = task({ status: 'todo' })
  const set = (x: string) => ({ status: { set: x } }) as TaskOp
  t.equal(merged(s, set('done'), set('in_progress')).status, 'done')
  t.equal(merged(s, set('in_progress'), set('done')).status, 'done')
  t.equal(merged(s, set('in_review'), set('in_progress')).status, 'in_review')
  t.equal(merged(s, set('todo'), set('in_review')).status, 'in_review', 'a concurrent move back loses')
  t.equal(merged(s, set('done'), set('done')).status, 'done')
  t.equal(merged(task({ status: 'done' }), set('todo'), {}).status, 'todo', 'any status may be set from any status')
  t.same(detectConflicts(set('done'), set('in_progress')), [], 'no conflict between ordinary states')
})

t.test('status: cancelled against another state, the first committed stays and a conflict is reported', async (t) => {
  const s = task({ status: 'in_progress' })
  const set = (x: string) => ({ status: { set: x } }) as TaskOp
  t.equal(merged(s, set('cancelled'), set('done')).status, 'done')
  t.equal(merged(s, set('done'), set('cancelled')).status, 'cancelled')
  t.equal(merged(s, set('todo'), set('cancelled')).status, 'cancelled')
  t.equal(merged(s, set('cancelled'), set('todo')).status, 'todo')
  t.equal(merged(s, set('cancelled'), set('cancelled')).status, 'cancelled')
  t.same(detectConflicts(set('cancelled'), set('done')), [{ field: 'status', committed: 'done', incoming: 'cancelled' }])
  t.same(detectConflicts(set('done'), set('cancelled')), [{ field: 'status', committed: 'cancelled', incoming: 'done' }])
  t.same(detectConflicts(set('cancelled'), set('cancelled')), [])
  t.same(detectConflicts(set('cancelled'), {}), [])
})

t.test('priority: higher wins', async (t) => {
  const set = (p: number): TaskOp => ({ priority: { set: p } })
  const s = task({ priority: 2 })
  t.equal(merged(s, set(4), set(1)).priority, 4)
  t.equal(merged(s, set(1), set(4)).priority, 4)
  t.equal(merged(s, set(0), set(1)).priority, 1, 'lowering loses against a concurrent raise')
  t.equal(merged(s, set(3), set(3)).priority, 3)
})

t.test('tags: union, and a concurrent add beats a remove', async (t) => {
  const s = task({ tags: ['api', 'bug'] })
  t.same(merged(s, { tags: { add: ['ui'] } }, { tags: { add: ['db'] } }).tags, ['api', 'bug', 'db', 'ui'])
  t.same(merged(s, { tags: { add: ['bug'] } }, { tags: { remove: ['bug'] } }).tags, ['api', 'bug'])
  t.same(merged(s, { tags: { remove: ['bug'] } }, { tags: { add: ['bug'] } }).tags, ['api', 'bug'])
  t.same(merged(s, { tags: { remove: ['bug'] } }, { tags: { remove: ['bug', 'api'] } }).tags, [])
  t.same(merged(s, { tags: { add: ['x'], remove: ['api'] } }, { tags: { add: ['api'], remove: ['x'] } }).tags, ['api', 'bug', 'x'])
  t.same(T.apply(s, { tags: { add: ['é', 'Z', 'a', '😀', 'a'] } }).tags, ['Z', 'a', 'api', 'bug', 'é', '😀'], 'sorted by UTF-16 code units, no duplicates')
  t.same(T.apply(task({ tags: ['\uFF21'] }), { tags: { add: ['😀'] } }).tags, ['😀', '\uFF21'], 'a surrogate pair sorts before U+FF21')
})

t.test('assigneeId, dueAt, projectId: the last writer in server order wins', async (t) => {
  const s = task({ assigneeId: U1, projectId: U1, dueAt: '2026-01-01T00:00:00.000Z' })
  for (const key of ['assigneeId', 'projectId'] as const) {
    t.equal(merged(s, { [key]: { set: U2 } }, { [key]: { set: null } })[key], U2)
    t.equal(merged(s, { [key]: { set: null } }, { [key]: { set: U2 } })[key], null)
  }
  t.equal(merged(s, { dueAt: { set: '2027-01-01T00:00:00Z' } }, { dueAt: { set: null } }).dueAt, '2027-01-01T00:00:00.000Z')
  t.equal(merged(s, { dueAt: { set: null } }, { dueAt: { set: '2027-01-01T00:00:00Z' } }).dueAt, null)
  t.equal(merged(s, {}, { dueAt: { set: null } }).dueAt, null)
  t.same(detectConflicts({ assigneeId: { set: U2 } }, { assigneeId: { set: U1 } }), [{ field: 'assigneeId', committed: U1, incoming: U2 }])
  t.same(detectConflicts({ assigneeId: { set: null } }, { assigneeId: { set: U1 } }), [{ field: 'assigneeId', committed: U1, incoming: null }])
  t.same(detectConflicts({ assigneeId: { set: U1 } }, { assigneeId: { set: U1 } }), [], 'same assignee, no conflict')
  t.same(detectConflicts({ projectId: { set: U1 } }, { projectId: { set: U2 } }), [], 'projectId is not reviewed')
})

t.test('customFields: per key, last writer wins, different keys merge', async (t) => {
  const s = task({ customFields: { estimate: 3, risk: 'low' } })
  t.same(merged(s, { customFields: { estimate: { set: 5 } } }, { customFields: { risk: { set: 'high' } } }).customFields, { estimate: 5, risk: 'high' })
  t.same(merged(s, { customFields: { estimate: { set: 5 } } }, { customFields: { estimate: { set: 8 } } }).customFields, { estimate: 5, risk: 'low' })
  t.same(merged(s, { customFields: { estimate: { unset: true } } }, { customFields: { estimate: { set: 8 } } }).customFields, { risk: 'low' })
  t.same(merged(s, { customFields: { estimate: { set: { a: [1] } } } }, { customFields: { estimate: { unset: true } } }).customFields, { estimate: { a: [1] }, risk: 'low' })
  t.same(merged(s, { customFields: { x: { set: null } } }, {}).customFields, { estimate: 3, risk: 'low', x: null }, 'null is a value; unset removes')
})

t.test('delete wins', async (t) => {
  const tomb = { ...T.create(), deleted: true }
  const s = task({ title: 'keep?', tags: ['a'], status: 'done', customFields: { k: 1 } })
  const ops: TaskOp[] = [{}, { title: [{ d: 2 }] }, { status: { set: 'cancelled' } }, { tags: { add: ['b'] } }, { delete: true }]
  for (const x of ops) {
    for (const side of ['left', 'right'] as const) {
      t.same(T.transform(x, { delete: true }, side), {}, `transform(${JSON.stringify(x)}, delete, ${side}) is {}`)
      t.same(T.transform(x, { delete: true, title: ['x'] }, side), {})
      if (!x.delete) t.same(T.transform({ delete: true }, x, side), { delete: true })
    }
    t.same(merged(s, x, { delete: true }), tomb)
    t.same(merged(s, { delete: true }, x), tomb)
  }
  t.same(T.apply(s, { delete: true }), tomb, 'apply delete gives the tombstone')
  t.same(T.apply(s, { delete: true, title: [999, 'ignored'], priority: { set: 4 } }), tomb, 'whatever else the op holds')
  t.equal(T.apply(tomb, { title: ['x'] }), tomb, 'apply to a deleted snapshot returns it unchanged')
  t.equal(T.apply(tomb, { delete: true }), tomb)
  t.same(T.compose({ title: ['x'] }, { delete: true }), { delete: true })
  t.same(T.compose({ delete: true }, { title: ['x'] }), { delete: true })
  t.same(T.normalize({ delete: true, status: { set: 'done' } }), { delete: true })
})

t.test('the identity op and create()', async (t) => {
  t.same(T.create(), {
    title: '', description: '', status: 'todo', priority: 0, tags: [], assigneeId: null, dueAt: null, projectId: null, customFields: {}, deleted: false,
  })
  const s = task({ title: 'x' })
  t.same(T.apply(s, {}), s)
  t.same(T.transform({}, { title: ['a'] }, 'left'), {})
  t.same(T.transform({ title: ['a'] }, {}, 'right'), { title: ['a'] })
  t.same(T.normalize({ title: [], description: [3], customFields: {} }), {}, 'an op that does nothing becomes {}')
  t.equal(T.name, 'tasksync-task')
  t.equal(T.uri, 'https://tasksync.dev/types/task/v1')
})
