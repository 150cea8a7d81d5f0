/**
 * The SDK against the real server (one instance): log in, create, edit,
 * comment, and see another client's edits live.
 */
import t from 'tap'
import WebSocket from 'ws'
import { TaskSyncClient, type WebSocketConstructor } from '../../src/client/index.js'
import { startTestApp, registerOwner } from '../helpers/app.js'

t.test('two SDK clients edit one task and converge with the server', async (t) => {
  const app = await startTestApp(t)
  const owner = await registerOwner(app.url)
  const make = (name: string) => {
    const c = new TaskSyncClient({
      url: app.url,
      credentials: { email: owner.user.email, password: owner.password, device: { name, platform: 'test' } },
      WebSocket: WebSocket as unknown as WebSocketConstructor,
    })
    t.teardown(() => c.close())
    return c
  }
  const a = make('a')
  const b = make('b')
  await a.connect()
  await b.connect()
  const ta = a.createTask({ title: 'hello', tags: ['x'] })
  await a.whenSynced({ timeoutMs: 10_000 })
  t.equal(ta.rev, 1)
  const tb = await b.task(ta.id)
  t.equal(tb.snapshot.title, 'hello')
  ta.submit({ title: [5, ' world'] })
  tb.submit({ title: ['>> '], priority: { set: 2 } })
  const c = tb.addComment('looks good')
  await Promise.all([a.whenSynced({ timeoutMs: 10_000 }), b.whenSynced({ timeoutMs: 10_000 })])
  await a.whenSynced({ timeoutMs: 10_000 })
  const server = await (await fetch(`${app.url}/api/tasks/${ta.id}`, { headers: { authorization: `Bearer ${owner.accessToken}` } })).json()
  t.equal(server.title, '>> hello world')
  t.same([ta.snapshot.title, tb.snapshot.title], [server.title, server.title])
  t.same([ta.rev, tb.rev], [server.rev, server.rev])
  t.equal(ta.snapshot.priority, 2)
  const comments = await a.loadComments(ta)
  t.same(comments.map((x) => [x.id, x.body]), [[c.id, 'looks good']])
})

t.test('a deletion wins: an offline edit of a deleted task is refused visibly and both clients end on the tombstone', async (t) => {
  const app = await startTestApp(t)
  const owner = await registerOwner(app.url)
  const make = (name: string) => {
    const c = new TaskSyncClient({
      url: app.url,
      credentials: { email: owner.user.email, password: owner.password, device: { name, platform: 'test' } },
      WebSocket: WebSocket as unknown as WebSocketConstructor,
    })
    t.teardown(() => c.close())
    return c
  }
  const a = make('a')
  const b = make('b')
  await a.connect()
  await b.connect()
  const ta = a.createTask({ title: 'doomed' })
  await a.whenSynced({ timeoutMs: 10_000 })
  const tb = await b.task(ta.id)
  const conflicts: string[] = []
  tb.on('conflict', (e) => conflicts.push(`${e.kind}:${e.code}`))
  let deletedSeen = 0
  tb.on('deleted', () => deletedSeen++)
  b.goOffline()
  tb.submit({ title: [6, '?'] })
  ta.delete()
  await a.whenSynced({ timeoutMs: 10_000 })
  b.goOnline()
  await b.whenSynced({ timeoutMs: 10_000 })
  t.equal(tb.deleted, true)
  t.equal(deletedSeen, 1)
  t.equal(tb.pending, 0)
  t.same(conflicts, ['rejected:task_deleted'], 'the refused edit is reported')
  // The server's tombstone: rev 1 the create, rev 2 the delete; b's edit committed nothing.
  const server = await (await fetch(`${app.url}/api/tasks/${ta.id}`, { headers: { authorization: `Bearer ${owner.accessToken}` } })).json()
  t.match(server, { rev: 2, deleted: true })
  t.same([ta.rev, tb.rev], [server.rev, server.rev], 'both clients at the tombstone rev')
})
