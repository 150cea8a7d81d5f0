/**
 * tasksync/react against the real server: a React tree (react-dom on happy-dom)
 * with one client, a plain SDK client as the other person.
 */
import t from 'tap'
import WebSocket from 'ws'
import { createElement as h, useState } from 'react'
import { createRoot, type Root } from 'react-dom/client'
import { TaskSyncClient, type WebSocketConstructor } from '../../src/client/index.js'
import { TaskSyncProvider, useComments, useConflicts, usePresence, useStatus, useTask, useTextField, useWatch } from '../../src/react/index.js'
import { addMember, api, registerOwner, startTestApp } from '../helpers/app.js'
import { installDom, nodeFetch, until } from './dom.js'

installDom(t)

interface Teardown {
  teardown(fn: () => unknown): void
}

function makeClient(t: Teardown, url: string, email: string, password: string, name: string): TaskSyncClient {
  const c = new TaskSyncClient({ url, credentials: { email, password, device: { name, platform: 'test' } }, WebSocket: WebSocket as unknown as WebSocketConstructor, fetch: nodeFetch })
  t.teardown(() => c.close())
  return c
}

function mount(t: Teardown, client: TaskSyncClient, child: ReturnType<typeof h>): { root: Root; el: HTMLElement } {
  const el = document.createElement('div')
  document.body.appendChild(el)
  const root = createRoot(el)
  root.render(h(TaskSyncProvider, { client }, child))
  t.teardown(() => {
    root.unmount()
    el.remove()
  })
  return { root, el }
}

const text = (el: HTMLElement, sel: string) => el.querySelector(sel)?.textContent ?? null

t.test('useWatch, useTask, useStatus: cards appear, change and leave as the other client edits; pending counts offline edits', async (t) => {
  const app = await startTestApp(t)
  const owner = await registerOwner(app.url)
  const project = (await api(app.url, owner.accessToken).post('/api/projects', { name: 'P' })).body
  const a = makeClient(t, app.url, owner.user.email, owner.password, 'react')
  const b = makeClient(t, app.url, owner.user.email, owner.password, 'plain')
  await a.connect()
  await b.connect()

  function Board() {
    const { tasks } = useWatch({ projectId: project.id })
    const { status, pending } = useStatus()
    return h('div', null, h('p', { id: 'status' }, `${status}:${pending}`), h('ul', null, tasks.map((x) => h('li', { key: x.id, 'data-id': x.id }, `${x.title}|${x.status}`))))
  }
  function Detail({ id }: { id: string }) {
    const { snapshot, loading } = useTask(id)
    return h('p', { id: 'detail' }, loading ? 'loading' : `${snapshot?.title}@${snapshot?.rev}`)
  }
  const { el } = mount(t, a, h(Board))
  await until(() => text(el, '#status') === 'online:0', 'online')

  const made = b.createTask({ title: 'first', projectId: project.id })
  await until(() => text(el, `li[data-id="${made.id}"]`) === 'first|todo', 'the card of a task created by the other client')
  made.update({ status: 'in_progress', title: 'first!' })
  await until(() => text(el, `li[data-id="${made.id}"]`) === 'first!|in_progress', 'the card changes')

  const detail = mount(t, a, h(Detail, { id: made.id }))
  await until(() => text(detail.el, '#detail') === `first!@${made.rev}`, 'useTask shows the task at its rev')

  a.goOffline()
  await until(() => text(el, '#status') === 'offline:0', 'offline')
  const mine = await a.task(made.id)
  mine.update({ title: 'edited offline' })
  mine.update({ priority: 3 })
  await until(() => text(el, '#status') === 'offline:2', 'two edits waiting')
  await until(() => text(detail.el, '#detail')?.startsWith('edited offline@'), 'useTask shows the local edit at once')
  a.goOnline()
  await until(() => text(el, '#status') === 'online:0', 'the edits were acknowledged')
  await b.whenSynced({ timeoutMs: 10_000 })
  t.equal((await b.task(made.id)).snapshot.title, 'edited offline', 'the other client has them')

  made.update({ projectId: null })
  await until(() => !el.querySelector(`li[data-id="${made.id}"]`), 'a task moved out of the project leaves the board')
})

t.test('usePresence, useComments, useConflicts', async (t) => {
  const app = await startTestApp(t)
  const owner = await registerOwner(app.url)
  const viewer = await addMember(app.url, owner.accessToken, 'viewer')
  const b = makeClient(t, app.url, owner.user.email, owner.password, 'owner')
  const a = makeClient(t, app.url, viewer.user.email, viewer.password, 'viewer')
  await b.connect()
  await a.connect()
  const task = b.createTask({ title: 'talk' })
  await b.whenSynced({ timeoutMs: 10_000 })
  const first = task.addComment('first comment')
  await b.whenSynced({ timeoutMs: 10_000 })

  let add: ((body: string, parentId?: string | null) => void) | null = null
  function Page() {
    const [peers] = usePresence(task.id)
    const c = useComments(task.id)
    add = c.add
    const { conflicts } = useConflicts(task.id)
    const { task: handle } = useTask(task.id)
    const [tried, setTried] = useState(false)
    if (handle && !tried) {
      setTried(true)
      handle.update({ title: 'a viewer may not' })
    }
    return h(
      'div',
      null,
      h('p', { id: 'peers' }, peers.map((p) => `${p.userId}:${String(p.state.field)}`).join(',')),
      h('ul', null, c.comments.map((x) => h('li', { key: x.id, 'data-parent': x.parentId ?? '' }, x.body))),
      h('p', { id: 'conflicts' }, conflicts.map((x) => `${x.kind}:${x.code}`).join(',')),
    )
  }
  const { el } = mount(t, a, h(Page))
  await until(() => text(el, 'ul')?.includes('first comment'), 'existing comments are read')
  await until(() => text(el, '#conflicts') === 'rejected:forbidden', "the viewer's refused edit is reported")

  await until(() => a.status === 'online', 'a online')
  task.setPresence({ field: 'description', cursor: 2 })
  await until(() => text(el, '#peers') === `${owner.user.id}:description`, "the other client's presence")

  b.task(task.id).then((x) => x.addComment('second', { parentId: first.id }))
  await until(() => el.querySelectorAll('li').length === 2, 'a live reply')
  t.equal(el.querySelectorAll(`li[data-parent="${first.id}"]`).length, 1, 'threaded under the first')
  t.ok(add, 'add is exposed')
})

t.test('useTextField: keystrokes become ops; a remote insert before the caret moves it, one after it does not', async (t) => {
  const app = await startTestApp(t)
  const owner = await registerOwner(app.url)
  const a = makeClient(t, app.url, owner.user.email, owner.password, 'editor')
  const b = makeClient(t, app.url, owner.user.email, owner.password, 'other')
  await a.connect()
  await b.connect()
  const made = b.createTask({ title: 'hello world' })
  await b.whenSynced({ timeoutMs: 10_000 })

  function Editor() {
    const { task } = useTask(made.id)
    const ref = useTextField(task, 'title')
    return h('input', { ref, id: 'title', 'aria-label': 'Title' })
  }
  const { el } = mount(t, a, h(Editor))
  const input = await until(() => {
    const i = el.querySelector('#title') as HTMLInputElement | null
    return i && i.value === 'hello world' ? i : null
  }, 'the input shows the title')
  input.focus()
  // The person types "big " after "hello ": the caret ends after it.
  input.value = 'hello big world'
  input.setSelectionRange(10, 10)
  input.dispatchEvent(new Event('input', { bubbles: true }))
  const theirs = await b.task(made.id)
  await until(() => theirs.snapshot.title === 'hello big world', 'the other client has the keystrokes')
  theirs.submit({ title: ['>> '] })
  await until(() => input.value === '>> hello big world', 'a remote insert at the start')
  t.equal(input.selectionStart, 13, 'the caret moved with the text before it')
  theirs.submit({ title: [18, '!'] })
  await until(() => input.value === '>> hello big world!', 'a remote insert at the end')
  t.equal(input.selectionStart, 13, 'the caret stayed')
  t.equal(input.selectionEnd, 13)
})
