/**
 * client.watch() against the real server (PostgreSQL, Redis): a project board
 * sees the tasks of its project appear and leave live, across reconnects, and
 * a socket subscribed to a project and to a task in it gets each op once.
 */
import t, { type Test } from 'tap'
import { randomUUID } from 'node:crypto'
import WebSocket from 'ws'
import { TaskSyncClient, type TaskHandle, type TaskWatch, type WebSocketConstructor } from '../../src/client/index.js'
import { api, registerOwner, startTestApp, type TestApp } from '../helpers/app.js'
import { waitFor } from './fake-socket.js'

type Frame = { type: string; taskId?: string; rev?: number; projectIds?: string[]; taskIds?: string[]; all?: boolean }

/** A `ws` socket class that records every frame of one client and can cut its network (connections refused). */
function network() {
  const net = { heard: [] as Frame[], sent: [] as Frame[], sockets: [] as WebSocket[], down: false }
  class Recorded extends WebSocket {
    constructor(url: string) {
      // While the network is down, connect where nothing listens: refused, like a real outage.
      super(net.down ? 'ws://127.0.0.1:1/ws' : url)
      net.sockets.push(this)
      this.on('message', (data) => net.heard.push(JSON.parse(String(data))))
    }
    override send(data: unknown, ...rest: unknown[]): void {
      net.sent.push(JSON.parse(String(data)))
      ;(super.send as (...args: unknown[]) => void)(data, ...rest)
    }
  }
  return { net, WebSocket: Recorded as unknown as WebSocketConstructor }
}

/** What a watch emitted, with the handle's content at the moment of each `task`. */
function record(w: TaskWatch) {
  const seen = { entered: new Map<string, TaskHandle>(), at: new Map<string, { title: string; description: string; projectId: string | null }>(), left: [] as string[], events: 0 }
  w.on('task', (h) => {
    seen.events++
    seen.entered.set(h.id, h)
    const { title, description, projectId } = h.snapshot
    seen.at.set(h.id, { title, description, projectId })
  })
  w.on('leave', (id) => {
    seen.events++
    seen.left.push(id)
  })
  return seen
}

let app: TestApp

t.before(async () => {
  app = await startTestApp(t)
})

/** A fresh organization with two projects, and a maker of clients logged in as its owner. */
async function org(t: Test) {
  const owner = await registerOwner(app.url)
  const rest = api(app.url, owner.accessToken)
  const project = async (name: string) => {
    const res = await rest.post('/api/projects', { name })
    t.equal(res.status, 201)
    return res.body.id as string
  }
  const make = async (name: string) => {
    const { net, WebSocket } = network()
    /** The REST reads this client made (method and path). */
    const reads: string[] = []
    const client = new TaskSyncClient({
      url: app.url,
      credentials: { email: owner.user.email, password: owner.password, device: { name, platform: 'test' } },
      WebSocket,
      backoff: { baseMs: 10, maxMs: 50 },
      watchPageSize: 100,
      fetch: (url: string, init?: RequestInit) => {
        reads.push(`${init?.method ?? 'GET'} ${new URL(url).pathname}`)
        return fetch(url, init)
      },
    })
    t.teardown(() => client.close())
    await client.connect()
    return { client, net, reads }
  }
  const createTask = async (body: object) => {
    const res = await rest.post('/api/tasks', body)
    if (res.status !== 201) throw new Error(`create failed: ${res.status} ${JSON.stringify(res.body)}`)
    return res.body.id as string
  }
  return { owner, rest, project, make, createTask, P: await project('board'), Q: await project('elsewhere') }
}

t.test('a project watch sees the tasks already there (every page), created there, moved in; leave on a move out and a deletion', async (t) => {
  const o = await org(t)
  // More than one REST page (this test's watches list 100 at a time).
  const existing: string[] = []
  for (let i = 0; i < 105; i += 15) {
    existing.push(...(await Promise.all(Array.from({ length: Math.min(15, 105 - i) }, (_, k) => o.createTask({ projectId: o.P, title: `old ${i + k}` })))))
  }
  const movedId = await o.createTask({ projectId: o.Q, title: 'from elsewhere', description: 'its content' })
  const openId = await o.createTask({ projectId: o.Q, title: 'already open' })
  const a = await o.make('watcher')
  const b = await o.make('editor')
  const alreadyOpen = await a.client.task(openId)

  const w = a.client.watch({ projectId: o.P })
  const seen = record(w)
  await waitFor(() => seen.entered.size === 105, 'the existing tasks', 10_000)
  t.same([...seen.entered.keys()].sort(), [...existing].sort(), 'exactly the tasks of the project, each once')
  t.equal(seen.events, 105)
  t.ok([...seen.entered.values()].every((h) => h.loaded && h === a.client.openTasks.find((x) => x.id === h.id)), 'open, loaded client handles')

  const fresh = b.client.createTask({ projectId: o.P, title: 'fresh' })
  await waitFor(() => seen.entered.has(fresh.id), 'the task created by another client')
  t.same(seen.at.get(fresh.id), { title: 'fresh', description: '', projectId: o.P }, 'created with its title')
  t.notOk(a.reads.includes(`GET /api/tasks/${fresh.id}`), 'opened from its creation op, without reading its snapshot')
  const served = (await o.rest.get(`/api/tasks/${fresh.id}`)).body
  const { updatedAt: _ignored, ...stable } = served
  t.match(seen.entered.get(fresh.id)!.snapshot, { ...stable, createdAt: served.createdAt }, 'the snapshot built from the creation op is the server one (rev, clock, createdAt, content)')

  const moving = await b.client.task(movedId)
  moving.update({ projectId: o.P })
  await waitFor(() => seen.entered.has(movedId), 'the task moved in')
  t.same(seen.at.get(movedId), { title: 'from elsewhere', description: 'its content', projectId: o.P }, 'moved in with its current content')

  ;(await b.client.task(openId)).update({ projectId: o.P })
  await waitFor(() => seen.entered.has(openId), 'the open task moved in')
  t.equal(seen.entered.get(openId), alreadyOpen, 'a task already open is announced with the same handle')

  ;(await b.client.task(existing[0])).update({ projectId: o.Q })
  ;(await b.client.task(existing[1])).delete()
  await waitFor(() => seen.left.length === 2, 'two leaves')
  t.same([...seen.left].sort(), [existing[0], existing[1]].sort(), 'leave for the task moved out and the deleted one')
  const movedOut = a.client.openTasks.find((h) => h.id === existing[0])!
  t.ok(movedOut, 'the handle of a task that left stays open')
  await waitFor(() => movedOut.snapshot.projectId === o.Q, 'the move out on the open handle')
  t.equal(seen.events, 105 + 3 + 2, 'no duplicate events')
  t.same(w.tasks.map((h) => h.id).sort(), [...existing.slice(2), fresh.id, movedId, openId].sort(), 'tasks: what is in the project now')
})

t.test('an org-wide watch sees a task created without a project', async (t) => {
  const o = await org(t)
  const a = await o.make('watcher')
  const b = await o.make('editor')
  const seen = record(a.client.watch({ all: true }))
  const loose = b.client.createTask({ title: 'no project' })
  const inP = b.client.createTask({ title: 'in a project', projectId: o.P })
  await waitFor(() => seen.entered.has(loose.id) && seen.entered.has(inP.id), 'both tasks')
  t.same(seen.at.get(loose.id), { title: 'no project', description: '', projectId: null })
  t.equal(seen.at.get(inP.id)?.projectId, o.P)
  t.equal(seen.events, 2)
})

t.test('a watch of a project that does not exist (or is not visible) reports not_found', async (t) => {
  const o = await org(t)
  const a = await o.make('watcher')
  const missing = randomUUID()
  const w = a.client.watch({ projectId: missing })
  let errors = 0
  w.on('error', () => errors++)
  const error = await new Promise<Error>((resolve) => w.on('error', resolve))
  t.equal((error as { code?: string }).code, 'not_found')
  t.same(w.tasks, [])
  // After a reconnect the refused scope is not asked for again.
  const sockets = a.net.sockets.length
  a.net.sockets.at(-1)!.terminate()
  await waitFor(() => a.net.sockets.length > sockets && a.client.status === 'online', 'back online on a new socket', 10_000)
  // A marker: a scope asked for now is sent after anything the reconnect asked for.
  const sentBefore = a.net.sent.length
  a.client.watch({ projectId: o.P })
  await waitFor(() => a.net.sent.slice(sentBefore).some((f) => f.type === 'subscribe' && f.projectIds?.includes(o.P)), 'the marker scope subscribed')
  const asks = a.net.sent.filter((f) => f.type === 'subscribe' && f.projectIds?.includes(missing)).length
  t.equal(asks, 1, 'subscribed once, not again after the reconnect')
  t.equal(errors, 1, 'one error event')
})

t.test('a socket subscribed to a project and to a task in it gets each op once; the handle converges', async (t) => {
  const o = await org(t)
  const a = await o.make('watcher')
  const b = await o.make('editor')
  const w = a.client.watch({ projectId: o.P })
  const seen = record(w)
  await waitFor(() => a.net.heard.some((m) => m.type === 'subscribed' && m.projectIds?.includes(o.P)), 'the project subscription')
  const tb = b.client.createTask({ projectId: o.P, title: 'busy', tags: ['x'] })
  await waitFor(() => seen.entered.has(tb.id), 'the new task')
  const ta = seen.entered.get(tb.id)!
  await waitFor(() => ta.isSubscribed(), 'the task subscribed by id too')
  t.ok(a.net.sent.some((m) => m.type === 'subscribe' && m.taskIds?.includes(tb.id)), 'subscribed by id on the socket that has the project')

  for (let i = 0; i < 40; i++) {
    tb.submit(i % 3 === 0 ? { priority: { set: i % 5 } } : { title: [4, `-${i}`] })
    if (i % 4 === 0) ta.submit({ description: [`${i};`] })
    if (i % 5 === 0) await new Promise((r) => setTimeout(r, 5))
  }
  await b.client.whenSynced({ timeoutMs: 10_000 })
  await a.client.whenSynced({ timeoutMs: 10_000 })
  await b.client.whenSynced({ timeoutMs: 10_000 })

  const server = (await o.rest.get(`/api/tasks/${tb.id}`)).body
  const frames = a.net.heard.filter((m) => (m.type === 'op' || m.type === 'snapshot') && m.taskId === tb.id)
  const opRevs = frames.filter((m) => m.type === 'op').map((m) => m.rev!)
  t.equal(new Set(opRevs).size, opRevs.length, 'no rev delivered twice')
  let last = 0
  const ordered = frames.every((m) => {
    const ok = m.type === 'snapshot' ? m.rev! >= last : m.rev! > last
    last = Math.max(last, m.rev!)
    return ok
  })
  t.ok(ordered, `ops in rev order, none at or below a rev already had: ${frames.map((m) => `${m.type[0]}${m.rev}`).join(' ')}`)
  // Every op the editor committed after the watcher's first frame reached it as an op (or under a later
  // snapshot); how many ops that is depends on how many the editor's SDK composed while one was in flight.
  const log = (await o.rest.get(`/api/tasks/${tb.id}/ops?from=1&limit=1000`)).body.ops as { rev: number; clientId: string | null }[]
  const from = frames[0]?.type === 'snapshot' ? frames[0].rev! : 0
  const theirs = log.filter((e) => e.clientId === b.client.clientId && e.rev > from).map((e) => e.rev)
  const covered = (rev: number) => opRevs.includes(rev) || frames.some((m) => m.type === 'snapshot' && m.rev! >= rev)
  t.ok(theirs.length > 0 && theirs.every(covered), `the other client’s ops arrived as ops: ${theirs.join(' ')}`)
  t.comment(frames.map((m) => `${m.type}@${m.rev}`).join(' '))
  t.equal(ta.rev, server.rev)
  // (A client stamps its own acknowledged commits with its own clock: updatedAt may differ by a few ms
  // when the last op was the watcher's; the creator keeps its local createdAt too. Compare the rest.)
  t.same({ ...ta.snapshot, updatedAt: 0 }, { ...server, updatedAt: 0 }, 'the watcher’s handle equals the server snapshot')
  t.same({ ...tb.snapshot, createdAt: 0, updatedAt: 0 }, { ...server, createdAt: 0, updatedAt: 0 }, 'so does the editor’s')
  t.equal(seen.events, 1)
})

t.test('after the watcher’s connection drops and comes back, a task created meanwhile is found and a move out is seen', async (t) => {
  const o = await org(t)
  const stays = await o.createTask({ projectId: o.P, title: 'stays' })
  const goes = await o.createTask({ projectId: o.P, title: 'goes' })
  const a = await o.make('watcher')
  const b = await o.make('editor')
  const seen = record(a.client.watch({ projectId: o.P }))
  await waitFor(() => seen.entered.size === 2, 'the existing tasks')
  await waitFor(() => a.client.status === 'online', 'online')

  a.net.down = true
  a.net.sockets.at(-1)!.terminate()
  await waitFor(() => a.client.status === 'connecting', 'the drop noticed')
  const offline = b.client.createTask({ projectId: o.P, title: 'made while the watcher was away' })
  ;(await b.client.task(goes)).update({ projectId: o.Q })
  await b.client.whenSynced({ timeoutMs: 10_000 })
  // Committed (b is synced) while every connection of the watcher is refused: nothing can have come.
  t.notOk(seen.entered.has(offline.id), 'not seen while disconnected')
  t.ok(a.net.sockets.length > 1, 'reconnects were tried (and refused)')

  a.net.down = false
  await waitFor(() => seen.entered.has(offline.id), 'the task created while away', 10_000)
  t.same(seen.at.get(offline.id), { title: 'made while the watcher was away', description: '', projectId: o.P })
  await waitFor(() => seen.left.includes(goes), 'leave for the task moved out while away')
  t.ok(seen.entered.has(stays))
  t.equal(seen.events, 4)
})

t.test('close() unsubscribes the scope and stops events; the handles stay open', async (t) => {
  const o = await org(t)
  const there = await o.createTask({ projectId: o.P, title: 'there' })
  const a = await o.make('watcher')
  const b = await o.make('editor')
  const c = await o.make('sentinel')
  const w = a.client.watch({ projectId: o.P })
  const seen = record(w)
  const control = record(c.client.watch({ projectId: o.P }))
  await waitFor(() => seen.entered.size === 1 && control.entered.size === 1, 'the existing task on both')
  const handle = seen.entered.get(there)!

  w.close()
  await waitFor(() => a.net.sent.some((m) => m.type === 'unsubscribe' && m.projectIds?.includes(o.P)), 'the unsubscribe')
  const after = b.client.createTask({ projectId: o.P, title: 'after close' })
  ;(await b.client.task(there)).update({ projectId: o.Q })
  await waitFor(() => control.entered.has(after.id) && control.left.includes(there), 'the sentinel sees both changes')
  // The marker: the move comes on the watcher's own socket after the create committed before it, so
  // an op of the new task fanned out to the closed scope would have arrived first.
  await waitFor(() => handle.snapshot.projectId === o.Q, 'the move reaches the still open handle')
  t.equal(seen.events, 1, 'no event after close')
  t.same(w.tasks, [], 'a closed watch holds nothing')
  t.notOk(a.client.openTasks.some((h) => h.id === after.id), 'the new task was not opened: its ops no longer come')
  t.ok(a.client.openTasks.includes(handle), 'the handle stays open')
})
