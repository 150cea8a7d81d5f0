/**
 * indexedDbStorage on an in-memory IndexedDB implementation (fake-indexeddb, a
 * spec-conformant one the browser tests of other projects use): batches are
 * atomic, values are copies, a reopened database has what was saved, and the SDK
 * restores an offline edit from it after a restart and delivers it to the real server.
 */
import t from 'tap'
import WebSocket from 'ws'
import { createHash, randomBytes } from 'node:crypto'
import { IDBFactory } from 'fake-indexeddb'
import { TaskSyncClient, indexedDbStorage, type WebSocketConstructor } from '../../src/client/index.js'
import { startTestApp, registerOwner } from '../helpers/app.js'

const g = globalThis as { indexedDB?: IDBFactory }

/** A fresh, empty IndexedDB as `globalThis.indexedDB` for one test. */
function freshIndexedDb(t: { teardown(fn: () => void): void }): void {
  const before = g.indexedDB
  g.indexedDB = new IDBFactory()
  t.teardown(() => {
    if (before === undefined) delete g.indexedDB
    else g.indexedDB = before
  })
}

t.test('without IndexedDB: a clear error, not a crash', async (t) => {
  const before = g.indexedDB
  delete g.indexedDB
  t.teardown(() => void (before !== undefined && (g.indexedDB = before)))
  await t.rejects(indexedDbStorage('x').load(), { message: /IndexedDB is not available/ })
})

t.test('saves apply in order, values are copies, null deletes, a reopen sees it all', async (t) => {
  freshIndexedDb(t)
  const a = indexedDbStorage('acct-1')
  t.same(await a.load(), {}, 'empty at first')
  const value = { rev: 2, tags: ['a'] }
  await Promise.all([a.save({ meta: { seq: 1 } }), a.save({ 'task:x': value, gone: 1 }), a.save({ meta: { seq: 2 }, gone: null })])
  value.tags.push('mutated after save')
  await a.close?.()
  const b = indexedDbStorage('acct-1')
  t.same(await b.load(), { meta: { seq: 2 }, 'task:x': { rev: 2, tags: ['a'] } }, 'the last save of a key wins; the stored value is a copy')
  const other = indexedDbStorage('acct-2')
  t.same(await other.load(), {}, 'another database name is another account')
  await b.close?.()
  await other.close?.()
})

t.test('the SDK keeps an offline edit in IndexedDB across a restart and delivers it', async (t) => {
  freshIndexedDb(t)
  const app = await startTestApp(t)
  const owner = await registerOwner(app.url)
  const make = () => {
    const c = new TaskSyncClient({
      url: app.url,
      credentials: { email: owner.user.email, password: owner.password, device: { name: 'browser', platform: 'web' } },
      WebSocket: WebSocket as unknown as WebSocketConstructor,
      storage: indexedDbStorage('owner'),
    })
    t.teardown(() => c.close())
    return c
  }
  const first = make()
  await first.connect()
  const task = first.createTask({ title: 'draft' })
  await first.whenSynced({ timeoutMs: 10_000 })
  const clientId = first.clientId
  first.goOffline()
  task.submit({ title: [5, ' v2'], priority: { set: 3 } })
  t.equal(task.snapshot.title, 'draft v2', 'applied locally while offline')
  await first.close()

  const second = make()
  await second.connect()
  t.equal(second.clientId, clientId, 'the same install id, read back from IndexedDB')
  const restored = await second.task(task.id)
  t.equal(restored.snapshot.title, 'draft v2', 'the unsent edit was restored')
  await second.whenSynced({ timeoutMs: 10_000 })
  const server = await (await fetch(`${app.url}/api/tasks/${task.id}`, { headers: { authorization: `Bearer ${owner.accessToken}` } })).json()
  t.same([server.title, server.priority, server.rev], ['draft v2', 3, 2], 'the server has the offline edit, once')
})

t.test('a file over 8 MiB attached offline is kept as its Blob in IndexedDB and uploads after a restart', async (t) => {
  freshIndexedDb(t)
  const app = await startTestApp(t, { redis: false, env: { ATTACHMENT_CHUNK_BYTES: String(4 * 1024 * 1024) } })
  const owner = await registerOwner(app.url)
  const make = () => {
    const c = new TaskSyncClient({
      url: app.url,
      credentials: { email: owner.user.email, password: owner.password, device: { name: 'browser', platform: 'web' } },
      WebSocket: WebSocket as unknown as WebSocketConstructor,
      storage: indexedDbStorage('owner'),
    })
    t.teardown(() => c.close())
    return c
  }
  const first = make()
  await first.connect()
  const task = first.createTask({ title: 'site survey' })
  await first.whenSynced({ timeoutMs: 10_000 })
  first.goOffline()
  const bytes = randomBytes(9 * 1024 * 1024 + 123)
  const upload = await task.attach(new Blob([bytes], { type: 'application/pdf' }), { name: 'survey.pdf' })
  t.equal(upload.status, 'waiting', 'offline: queued')
  await first.close()

  const kept = Object.values(await indexedDbStorage('owner').load()).flatMap((v) => (Array.isArray(v) ? v : []))
  const record = kept.find((r) => r?.name === 'survey.pdf')
  t.ok(record?.source?.blob instanceof Blob && record.source.kind === 'blob', 'the storage holds the Blob itself, not base64')

  const second = make()
  await second.connect()
  const queued = [...second.attachments.uploads.values()]
  t.equal(queued.length, 1, 'the upload was restored')
  const done = await queued[0]!.done
  t.match(done, { taskId: task.id, name: 'survey.pdf', size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') })
  const res = await second.attachments.download(task.id, done.id)
  t.ok(Buffer.from(await res.arrayBuffer()).equals(bytes), 'the server has every byte')
})
