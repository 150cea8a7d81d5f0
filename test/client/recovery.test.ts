/**
 * The SDK's recoveries against the real server (not a scripted one): an op
 * that does not apply to a local copy that diverged; a token renewed on an
 * open socket; `rev_too_old` answered to an op that fell behind; a clash of
 * (clientId, seq) with another writer (`already_exists`); `sync_required` from a
 * server restored from a backup (its copy of a task is behind the client's).
 */
import t from 'tap'
import WebSocket from 'ws'
import { TaskSyncClient, memoryStorage, type ClientStorage, type WebSocketConstructor } from '../../src/client/index.js'
import { slotStorage } from '../../src/client/slots.js'
import type { StoredTask } from '../../src/client/types.js'
import { api, registerOwner, startTestApp } from '../helpers/app.js'
import { copyTestDatabase } from '../helpers/db.js'
import type { Teardown } from '../helpers/teardown.js'

type Frame = { dir: 'in' | 'out'; conn: number; msg: Record<string, any> }

/** A `ws` WebSocket that records every frame and can hold outbound frames (a stalled uplink) until let go. */
function recordingSocket() {
  const frames: Frame[] = []
  const listeners = new Set<() => void>()
  let conns = 0
  let held: (() => void)[] | null = null
  class Recorded extends (WebSocket as unknown as new (url: string) => WebSocket) {
    readonly conn = ++conns
    constructor(url: string) {
      super(url)
      this.addEventListener('message', (ev) => {
        frames.push({ dir: 'in', conn: this.conn, msg: JSON.parse(String(ev.data)) })
        for (const l of [...listeners]) l()
      })
    }
    override send(data: string): void {
      frames.push({ dir: 'out', conn: this.conn, msg: JSON.parse(data) })
      for (const l of [...listeners]) l()
      if (held) held.push(() => super.send(data))
      else super.send(data)
    }
  }
  return {
    WebSocket: Recorded as unknown as WebSocketConstructor,
    frames,
    get conns() {
      return conns
    },
    hold() {
      held = []
    },
    release() {
      const queued = held ?? []
      held = null
      for (const f of queued) f()
    },
    /** Lets go of the hold without sending what it kept (those frames never left the client). */
    drop() {
      held = null
    },
    /** Resolves with the first frame (past or future) that matches. */
    waitFor(pred: (f: Frame) => boolean): Promise<Frame> {
      return new Promise((resolve) => {
        const check = () => {
          const f = frames.find(pred)
          if (!f) return false
          listeners.delete(check as () => void)
          resolve(f)
          return true
        }
        if (!check()) listeners.add(check as () => void)
      })
    },
  }
}

const makeClient = (url: string, owner: { user: { email: string }; password: string }, t: Teardown, extra: { storage?: ClientStorage; WebSocket?: WebSocketConstructor } = {}) => {
  const c = new TaskSyncClient({
    url,
    credentials: { email: owner.user.email, password: owner.password, device: { name: 'sdk', platform: 'test' } },
    WebSocket: extra.WebSocket ?? (WebSocket as unknown as WebSocketConstructor),
    storage: extra.storage,
    backoff: { baseMs: 50, maxMs: 500 },
  })
  t.teardown(() => c.close())
  return c
}

t.test('an op that does not apply to the local copy: an error event and a reload from the snapshot, never a throw', async (t) => {
  const app = await startTestApp(t)
  const owner = await registerOwner(app.url)
  const created = (await api(app.url, owner.accessToken).post('/api/tasks', { title: 'hello world' })).body
  const storage = memoryStorage()
  const first = makeClient(app.url, owner, t, { storage })
  await first.connect()
  await first.task(created.id)
  const clientId = first.clientId
  await first.close()
  // The stored copy no longer matches the server's (a damaged store, a bug): its title is shorter.
  const slot = slotStorage(storage, clientId)
  const kept = (await slot.load())[`task:${created.id}`] as StoredTask
  await slot.save({ [`task:${created.id}`]: { ...kept, base: { ...kept.base, title: 'hi' } } })
  // Meanwhile someone appends to the title: an insert at 11, past the end of the damaged copy.
  const patched = await api(app.url, owner.accessToken).patch(`/api/tasks/${created.id}`, { op: { title: [11, '!'] }, baseRev: 1 })
  t.equal(patched.status, 200)
  const again = makeClient(app.url, owner, t, { storage })
  const errors: Error[] = []
  again.on('error', (e) => errors.push(e))
  await again.connect()
  t.equal(again.clientId, clientId)
  const task = await again.task(created.id)
  await again.whenSynced({ timeoutMs: 20_000 })
  t.match(task.snapshot, { title: 'hello world!', rev: 2 }, 'reloaded: equal to the server')
  t.ok(errors.some((e) => /does not apply to the local copy/.test(e.message)), 'reported as an error event')
  // And it keeps working: a local edit after the reload commits.
  task.submit({ title: [12, '?'] })
  await again.whenSynced({ timeoutMs: 20_000 })
  t.equal((await api(app.url, owner.accessToken).get(`/api/tasks/${created.id}`)).body.title, 'hello world!?')
})

t.test('rev_too_old from the real server: caught up from the log and resent under the same seq, committed once', async (t) => {
  // The smallest replay and transform windows the config allows: an op more than 10 revs behind is rev_too_old.
  const app = await startTestApp(t, { env: { REPLAY_WINDOW_OPS: '10', SYNC_TRANSFORM_WINDOW_OPS: '10' } })
  const owner = await registerOwner(app.url)
  const created = (await api(app.url, owner.accessToken).post('/api/tasks', { title: 'behind' })).body
  const net = recordingSocket()
  const client = makeClient(app.url, owner, t, { WebSocket: net.WebSocket })
  await client.connect()
  const task = await client.task(created.id)
  await client.whenSynced({ timeoutMs: 20_000 })
  // The uplink stalls with our op in it, built on rev 1, while 12 ops are committed by others.
  net.hold()
  task.submit({ description: ['mine'] })
  const sent = await net.waitFor((f) => f.dir === 'out' && f.msg.type === 'op')
  for (let i = 0; i < 12; i++) {
    const r = await api(app.url, owner.accessToken).patch(`/api/tasks/${created.id}`, { op: { title: [6, `${i % 10}`] }, baseRev: 1 + i })
    t.equal(r.status, 200)
  }
  net.release()
  const refused = await net.waitFor((f) => f.dir === 'in' && f.msg.type === 'error' && f.msg.code === 'rev_too_old')
  t.ok(refused, 'the server answered rev_too_old')
  await client.whenSynced({ timeoutMs: 20_000 })
  const resends = net.frames.filter((f) => f.dir === 'out' && f.msg.type === 'op')
  t.ok(resends.length >= 2, 'sent again after catching up')
  t.same(new Set(resends.map((f) => f.msg.seq)), new Set([sent.msg.seq]), 'under the same seq')
  const ops = (await api(app.url, owner.accessToken).get(`/api/tasks/${created.id}/ops?from=2`)).body.ops as { clientId: string; seq: number }[]
  t.equal(ops.filter((o) => o.clientId === client.clientId && o.seq === sent.msg.seq).length, 1, 'committed once')
  const server = (await api(app.url, owner.accessToken).get(`/api/tasks/${created.id}`)).body
  t.equal(server.description, 'mine')
  t.same([task.snapshot.title, task.snapshot.description, task.rev], [server.title, server.description, server.rev], 'the client equals the server')
})

t.test('token renewal on the real server: with 10 s tokens the socket outlives the first token and still commits', async (t) => {
  const app = await startTestApp(t, { env: { ACCESS_TOKEN_TTL_S: '10' } })
  const owner = await registerOwner(app.url)
  const created = (await api(app.url, owner.accessToken).post('/api/tasks', { title: 'long socket' })).body
  const net = recordingSocket()
  const client = makeClient(app.url, owner, t, { WebSocket: net.WebSocket })
  await client.connect()
  const task = await client.task(created.id)
  const firstAuth = await net.waitFor((f) => f.dir === 'out' && f.msg.type === 'auth')
  const authed = await net.waitFor((f) => f.dir === 'in' && f.msg.type === 'authed')
  t.equal(firstAuth.conn, 1, 'a fresh token sent in-band on the open socket')
  t.ok(authed, 'and accepted (authed)')
  // Past the expiry of the token the socket was opened with: a second renewal marks it.
  await net.waitFor((f) => f.dir === 'out' && f.msg.type === 'auth' && f !== firstAuth)
  task.submit({ title: [11, ' still here'] })
  await client.whenSynced({ timeoutMs: 20_000 })
  t.equal(net.conns, 1, 'never reconnected: the socket was kept alive by renewals')
  // (The registration's token has expired by now: log in again to read.)
  const login = (await api(app.url).post('/api/auth/login', { email: owner.user.email, password: owner.password, device: { name: 'reader', platform: 'test' } })).body
  t.equal((await api(app.url, login.accessToken).get(`/api/tasks/${created.id}`)).body.title, 'long socket still here')
})

t.test('already_exists from the real server: two writers forced onto one clientId both keep their edits (fresh seqs), whenSynced never hides a loss', async (t) => {
  const app = await startTestApp(t)
  const owner = await registerOwner(app.url)
  const created = (await api(app.url, owner.accessToken).post('/api/tasks', { title: 'shared id' })).body
  // Two installs that were given one clientId (a copied store, a hard-coded id), on the same device: both count seqs from 0.
  const clientId = crypto.randomUUID()
  const make = () => {
    const c = new TaskSyncClient({
      url: app.url,
      clientId,
      credentials: { email: owner.user.email, password: owner.password, device: { id: owner.device.id, name: 'sdk', platform: 'test' } },
      WebSocket: WebSocket as unknown as WebSocketConstructor,
      backoff: { baseMs: 50, maxMs: 500 },
    })
    t.teardown(() => c.close())
    return c
  }
  const one = make()
  const two = make()
  const errors: Error[] = []
  one.on('error', (e) => errors.push(e))
  two.on('error', (e) => errors.push(e))
  await Promise.all([one.connect(), two.connect()])
  const [a, b] = await Promise.all([one.task(created.id), two.task(created.id)])
  a.update({ status: 'done' })
  await one.whenSynced({ timeoutMs: 20_000 })
  // Same seq as the first one's edit, another mutation: the server refuses it; the SDK sends it again under a fresh seq.
  b.update({ priority: 2 })
  const c1 = b.addComment('from two')
  await two.whenSynced({ timeoutMs: 20_000 })
  await one.whenSynced({ timeoutMs: 20_000 })
  const server = (await api(app.url, owner.accessToken).get(`/api/tasks/${created.id}`)).body
  t.match(server, { status: 'done', priority: 2 }, 'both edits committed')
  t.same([a.snapshot.status, a.snapshot.priority, b.snapshot.status, b.snapshot.priority, a.rev, b.rev], ['done', 2, 'done', 2, server.rev, server.rev], 'both converge')
  t.ok(errors.some((e) => (e as { code?: string }).code === 'already_exists'), 'the clash is reported as an error event')
  const comments = (await api(app.url, owner.accessToken).get(`/api/tasks/${created.id}/comments`)).body.items as { id: string; body: string }[]
  t.same(comments.map((c) => [c.id, c.body]), [[c1.id, 'from two']], 'the comment too')
})

t.test('sync_required from a server restored from a backup (behind the client): the client takes the state of the server, keeps every unacknowledged edit and delivers it once', async (t) => {
  const first = await startTestApp(t)
  const port = Number(new URL(first.url).port)
  const owner = await registerOwner(first.url)
  const created = (await api(first.url, owner.accessToken).post('/api/tasks', { title: 'plan' })).body
  t.equal((await api(first.url, owner.accessToken).patch(`/api/tasks/${created.id}`, { description: 'notes' })).status, 200)
  const net = recordingSocket()
  const client = makeClient(first.url, owner, t, { WebSocket: net.WebSocket })
  const errors: Error[] = []
  client.on('error', (e) => errors.push(e))
  await client.connect()
  const task = await client.task(created.id)
  await client.whenSynced({ timeoutMs: 20_000 })
  t.equal(task.rev, 2)
  // The backup: the database as it is at rev 2 (the client's device and clientId are in it).
  await first.close()
  const backup = await copyTestDatabase(t, first.databaseUrl)
  // Life goes on after the backup: the client's own edit (rev 3, acknowledged) and two of someone else's.
  const second = await startTestApp(t, { databaseUrl: first.databaseUrl, port })
  task.update({ title: 'plan v2' })
  await client.whenSynced({ timeoutMs: 20_000 })
  t.equal((await api(second.url, owner.accessToken).patch(`/api/tasks/${created.id}`, { op: { title: ['[x] '] }, baseRev: 3 })).status, 200)
  t.equal((await api(second.url, owner.accessToken).patch(`/api/tasks/${created.id}`, { priority: 3 })).status, 200)
  await client.whenSynced({ timeoutMs: 20_000 })
  t.same([task.rev, task.snapshot.title], [5, '[x] plan v2'])
  // An edit sent but never answered (the uplink stalls, the server goes down), then edits made offline.
  net.hold()
  task.update({ description: 'notes A' })
  const unanswered = await net.waitFor((f) => f.dir === 'out' && f.msg.type === 'op')
  await second.close()
  net.drop()
  task.update({ title: '[x] plan v2 + mine', status: 'done' })
  t.equal(task.pending, 2, 'two local changes unacknowledged')
  // The server comes back restored from the backup: its task is at rev 2, behind the client's rev 5.
  const restored = await startTestApp(t, { databaseUrl: backup, port })
  const syncRequired = await net.waitFor((f) => f.dir === 'in' && f.msg.type === 'sync_required' && f.msg.taskId === created.id && f.conn > unanswered.conn)
  t.match(syncRequired.msg.reason, /ahead/, 'the real server says the client is ahead of it')
  await client.whenSynced({ timeoutMs: 30_000 })
  const server = (await api(restored.url, owner.accessToken).get(`/api/tasks/${created.id}`)).body
  // The revs the restore lost (the client's acknowledged " v2", someone's "[x] ", priority 3) are the
  // server's to lose; the three unacknowledged edits are kept, rebased onto what the server has.
  t.match(server, { title: 'plan + mine', description: 'notes A', status: 'done', priority: 0 }, 'every unacknowledged edit committed')
  t.same([task.rev, task.snapshot.title, task.snapshot.description, task.snapshot.status, task.snapshot.priority], [server.rev, server.title, server.description, server.status, server.priority], 'the client equals the server')
  t.equal(task.pending, 0)
  const ops = (await api(restored.url, owner.accessToken).get(`/api/tasks/${created.id}/ops?from=3`)).body.ops as { clientId: string; seq: number; op: Record<string, unknown> }[]
  t.ok(ops.length > 0 && ops.every((o) => o.clientId === client.clientId), 'committed by this client')
  t.equal(new Set(ops.map((o) => o.seq)).size, ops.length, 'each mutation once')
  t.ok(errors.some((e) => /behind/.test(e.message)), 'the rollback of the server is reported as an error event')
  // And the task goes on from there.
  task.update({ priority: 1 })
  await client.whenSynced({ timeoutMs: 20_000 })
  t.equal((await api(restored.url, owner.accessToken).get(`/api/tasks/${created.id}`)).body.priority, 1)
})
