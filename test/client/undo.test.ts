/**
 * Per-user undo and the text helpers through two real SDK clients on the
 * real server: undo takes back only this client's edits, moved past the
 * other's, and the result is what every client and the server converge on.
 */
import t, { type Test } from 'tap'
import WebSocket from 'ws'
import { TaskSyncClient, type TaskHandle, type WebSocketConstructor } from '../../src/client/index.js'
import { UndoHistory } from '../../src/client/undo.js'
import { startTestApp, registerOwner } from '../helpers/app.js'

async function twoClients(t: Test, undo?: { pauseMs: number }) {
  const app = await startTestApp(t)
  const owner = await registerOwner(app.url)
  const make = (name: string) => {
    const c = new TaskSyncClient({
      url: app.url,
      credentials: { email: owner.user.email, password: owner.password, device: { name, platform: 'test' } },
      WebSocket: WebSocket as unknown as WebSocketConstructor,
      undo,
    })
    t.teardown(() => c.close())
    return c
  }
  const a = make('a')
  const b = make('b')
  await a.connect()
  await b.connect()
  const synced = () => Promise.all([a.whenSynced({ timeoutMs: 10_000 }), b.whenSynced({ timeoutMs: 10_000 })])
  const server = async (id: string) =>
    (await fetch(`${app.url}/api/tasks/${id}`, { headers: { authorization: `Bearer ${owner.accessToken}` } })).json()
  return { a, b, synced, server }
}

/** Resolves once `task`'s view satisfies `ok` (checked on each change). */
const until = (task: TaskHandle, ok: () => boolean) =>
  new Promise<void>((resolve) => {
    if (ok()) return resolve()
    task.on('change', () => ok() && resolve())
  })

t.test('text helpers: insert, delete, replace and setText, in code points', async (t) => {
  const { a, synced, server } = await twoClients(t)
  const task = a.createTask({ title: '😀 hello' })
  task.insertText('title', 7, ' world')
  task.replaceText('title', 0, 1, '👩‍💻')
  task.deleteText('title', 0, 3) // the three code points of 👩‍💻 (woman, zero-width joiner, laptop)
  task.setText('description', 'line one')
  task.setText('description', 'line two')
  t.throws(() => task.insertText('title', -1, 'x'), { name: 'InvalidOpError' })
  t.throws(() => task.deleteText('title', 3, 100), { name: 'InvalidOpError' })
  task.submit({ title: ['A'] }) // the docs' example: a text op is an array of skip / insert / {d}
  await synced()
  const s = await server(task.id)
  t.equal(s.title, 'A hello world')
  t.equal(s.description, 'line two')
})

t.test('undo takes back only my edits, past the other client\'s, on every field', async (t) => {
  const { a, b, synced, server } = await twoClients(t, { pauseMs: 0 })
  const ta = a.createTask({ title: 'plan', description: 'notes', tags: ['x'], priority: 1 })
  await synced()
  const tb = await b.task(ta.id)
  t.equal(ta.canUndo, false, 'creating is not an undo step')

  ta.insertText('title', 4, ' abc')                                         // mine: "plan abc"
  ta.update({ status: 'in_progress', tags: ['x', 'mine'], assigneeId: null, dueAt: '2030-01-01T00:00:00.000Z', customFields: { risk: 'low', size: 3 } })
  await synced()
  await until(tb, () => tb.snapshot.title === 'plan abc')
  tb.insertText('title', 6, 'X')                                            // theirs splits my insert: "plan aXbc"
  tb.update({ priority: 4, tags: ['x', 'mine', 'theirs'], customFields: { size: 5 } })
  await synced()
  await until(ta, () => ta.snapshot.priority === 4)
  t.equal(ta.snapshot.title, 'plan aXbc')

  t.equal(ta.canUndo, true)
  t.equal(ta.undo(), true, 'undo the field edits')
  t.equal(ta.undo(), true, 'undo the title insert')
  t.equal(ta.canUndo, false)
  t.equal(ta.undo(), false, 'nothing left')
  await synced()
  await until(tb, () => tb.snapshot.status === 'todo' && tb.snapshot.title === 'planX')
  const s = await server(ta.id)
  t.equal(s.title, 'planX', 'exactly my three characters are gone, theirs stays')
  t.equal(s.status, 'todo')
  t.equal(s.dueAt, null)
  t.same(s.tags, ['theirs', 'x'], 'my tag removed, theirs kept')
  t.equal(s.priority, 4, 'their priority stays')
  t.same(s.customFields, { size: 5 }, 'my new key unset; the key they set after me keeps their value')
  t.same([ta.snapshot.title, tb.snapshot.title], [s.title, s.title])

  // Redo brings my edits back (and tb's stay), in the order they were made.
  t.equal(ta.canRedo, true)
  ta.redo()
  ta.redo()
  t.equal(ta.canRedo, false)
  await synced()
  const r = await server(ta.id)
  t.equal(r.title, 'plan aXbc')
  t.equal(r.status, 'in_progress')
  t.same(r.tags, ['mine', 'theirs', 'x'])
  t.same(r.customFields, { risk: 'low', size: 5 })
  t.equal(tb.canUndo, true, 'the other client has its own steps')
  t.equal(tb.undo(), true)
  await synced()
  t.equal((await server(ta.id)).priority, 1, 'their undo restores the priority they changed')
})

t.test('edits within the pause form one step; undo works offline and survives acks', async (t) => {
  const { a, b, synced, server } = await twoClients(t)
  const ta = a.createTask({ title: '' })
  await synced()
  for (const ch of 'typed') ta.insertText('title', ta.snapshot.title.length, ch) // one burst: one step
  await synced() // acked
  t.equal(ta.snapshot.title, 'typed')
  a.goOffline()
  t.equal(ta.undo(), true)
  t.equal(ta.snapshot.title, '', 'the whole burst is one step')
  t.equal(ta.canUndo, false)
  a.goOnline()
  await synced()
  t.equal((await server(ta.id)).title, '')
  const tb = await b.task(ta.id)
  t.equal(tb.snapshot.title, '')
})

t.test('the pause is measured between edits', async (t) => {
  let now = 0
  const h = new UndoHistory({ pauseMs: 500 }, () => now)
  const base = { title: '', description: '', status: 'todo', priority: 0, tags: [], assigneeId: null, dueAt: null, projectId: null, customFields: {}, deleted: false } as const
  h.start({ ...base, tags: [] })
  h.observe(true, { title: ['a'] }, { ...base, tags: [], title: 'a' })
  now = 400
  h.observe(true, { title: [1, 'b'] }, { ...base, tags: [], title: 'ab' })
  now = 1000
  h.observe(true, { title: [2, 'c'] }, { ...base, tags: [], title: 'abc' })
  const steps: unknown[] = []
  while (h.step('undo', (op) => steps.push(op)));
  t.same(steps, [[{ title: [2, { d: 1 }] }], [{ title: [{ d: 2 }] }]].map(([x]) => x), 'two steps: "c" (after a pause), then "ab"')
})
