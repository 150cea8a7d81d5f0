/**
 * One storage, several live clients (two browser tabs, two Node processes):
 * each is its own writer (its own clientId and seq counter, its own slot of
 * the storage); a reload takes its slot back; the queue of a writer that went
 * away is delivered by a client still running, under that writer's clientId
 * and seqs. Storage-layer tests first, then the SDK against the real server.
 */
import t from 'tap'
import WebSocket from 'ws'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { once } from 'node:events'
import { TaskSyncClient, memoryStorage, type ClientStorage, type WebSocketConstructor } from '../../src/client/index.js'
import { fileStorage } from '../../src/client/node.js'
import { claimSlot, slotStorage, slotsIn } from '../../src/client/slots.js'
import { processLocks } from '../../src/client/writer-locks.js'
import { api, registerOwner, startTestApp } from '../helpers/app.js'
import type { Teardown } from '../helpers/teardown.js'

/** The next event `name` of an SDK emitter. */
const next = <T = unknown>(e: { once(name: never, fn: never): unknown }, name: string): Promise<T> => new Promise<T>((resolve) => e.once(name as never, resolve as never))

const tempFile = (t: Teardown) => {
  const dir = mkdtempSync(join(tmpdir(), 'tasksync-writers-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return join(dir, 'state.json')
}

t.test('slots: two live clients of one storage never get one clientId; a released slot is taken back with its state', async (t) => {
  const storage = memoryStorage()
  const a = await claimSlot(storage, storage.locks!)
  const b = await claimSlot(storage, storage.locks!)
  t.not(a.clientId, b.clientId, 'a second live client gets a writer of its own')
  t.ok(a.created && b.created)
  await slotStorage(storage, a.clientId).save({ meta: { clientId: a.clientId, seq: 7 } })
  await t.rejects(claimSlot(storage, storage.locks!, a.clientId), { code: 'already_exists' }, 'a clientId held by a live client is refused')
  await a.lease.release()
  const again = await claimSlot(storage, storage.locks!)
  t.equal(again.clientId, a.clientId, 'a free slot is taken back (a reload)')
  t.equal(again.created, false)
  t.match(await slotStorage(storage, a.clientId).load(), { meta: { seq: 7 } }, 'with its seq counter')
})

t.test('slots: a waiting client gets the lock of a writer once it is released, never while it lives', async (t) => {
  const locks = processLocks()
  const held = await locks.tryAcquire('w1')
  t.ok(held)
  const stop = new AbortController()
  let granted = false
  const waiting = locks.acquire('w1', stop.signal).then((l) => ((granted = true), l))
  t.equal(await locks.tryAcquire('w1'), null, 'held: not available')
  await Promise.resolve()
  t.equal(granted, false)
  await held!.release()
  const lease = await waiting
  t.ok(granted, 'granted on release')
  t.equal(await locks.tryAcquire('w1'), null, 'handed straight to the waiter: a new client cannot slip in')
  await lease.release()
  const aborted = new AbortController()
  const x = await locks.tryAcquire('w2')
  const p = locks.acquire('w2', aborted.signal)
  aborted.abort()
  await t.rejects(p, { name: 'AbortError' })
  await x!.release()
  t.ok(await locks.tryAcquire('w2'), 'an aborted waiter does not keep the lock')
})

t.test('slots: keys from before slots become the slot of their clientId; a new slot is seeded with confirmed snapshots', async (t) => {
  const storage = memoryStorage()
  const base = { id: 'task-1', rev: 4, title: 'kept' }
  await storage.save({ meta: { clientId: 'legacy', seq: 9, deviceId: 'dev-1' }, 'task:task-1': { id: 'task-1', base, inflight: { kind: 'op', seq: 9, op: {}, baseRev: 4, count: 1 }, pending: null, pendingCount: 0 } })
  const a = await claimSlot(storage, storage.locks!)
  t.equal(a.clientId, 'legacy', 'the stored writer is taken back')
  const raw = await storage.load()
  t.notOk(raw.meta, 'moved out of the old keys')
  t.match(raw['w:legacy:meta'], { clientId: 'legacy', seq: 9 })
  const b = await claimSlot(storage, storage.locks!)
  const seeded = await slotStorage(storage, b.clientId).load()
  t.match(seeded, { meta: { clientId: b.clientId, seq: 0, deviceId: 'dev-1' }, 'task:task-1': { base, inflight: null, pending: null } }, "the other writer's snapshot, not its queue")
  t.same([...slotsIn(await storage.load()).keys()].sort(), ['legacy', b.clientId].sort())
})

t.test('fileStorage: two clients of one file each keep their own slot (every save reads the file afresh)', async (t) => {
  const path = tempFile(t)
  const one = fileStorage(path)
  const two = fileStorage(path)
  const a = await claimSlot(one, one.locks!)
  const b = await claimSlot(two, two.locks!)
  t.not(a.clientId, b.clientId)
  await Promise.all([
    slotStorage(one, a.clientId).save({ meta: { clientId: a.clientId, seq: 1 } }),
    slotStorage(two, b.clientId).save({ meta: { clientId: b.clientId, seq: 2 } }),
  ])
  const slots = slotsIn(await fileStorage(path).load())
  t.match(slots.get(a.clientId), { meta: { seq: 1 } }, "neither save erased the other's")
  t.match(slots.get(b.clientId), { meta: { seq: 2 } })
  await a.lease.release()
  await b.lease.release()
})

t.test('fileStorage: a writer held by another process is not shared; its lease is free once that process is killed', async (t) => {
  const path = tempFile(t)
  const script = `
    import { fileStorage } from './src/client/node.ts'
    import { claimSlot } from './src/client/slots.ts'
    const s = fileStorage(${JSON.stringify(path)})
    const slot = await claimSlot(s, s.locks)
    console.log(slot.clientId)
    setInterval(() => {}, 1000)
  `
  const child = spawn(process.execPath, ['--import=tsx', '--input-type=module', '-e', script], { cwd: process.cwd(), stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => child.kill('SIGKILL'))
  const [line] = (await once(child.stdout!, 'data')) as [Buffer]
  const theirs = line.toString().trim()
  const storage = fileStorage(path)
  const mine = await claimSlot(storage, storage.locks!)
  t.not(mine.clientId, theirs, 'the other process holds its writer')
  t.equal(await storage.locks!.tryAcquire(theirs), null, 'and its lock')
  child.kill('SIGKILL')
  await once(child, 'exit')
  const taken = await storage.locks!.tryAcquire(theirs)
  t.ok(taken, 'a lease whose process is gone is free (no waiting for it to go stale)')
  await taken!.release()
  await mine.lease.release()
})

// ---- the SDK against the real server --------------------------------------------

const client = (url: string, owner: { user: { email: string }; password: string }, storage: ClientStorage, t: Teardown) => {
  const c = new TaskSyncClient({
    url,
    credentials: { email: owner.user.email, password: owner.password, device: { name: 'browser', platform: 'test' } },
    WebSocket: WebSocket as unknown as WebSocketConstructor,
    storage,
    backoff: { baseMs: 50, maxMs: 500 },
  })
  t.teardown(() => c.close())
  return c
}

t.test('two tabs on one storage edit one task at once: two writers, every edit committed, both converge', async (t) => {
  const app = await startTestApp(t)
  const owner = await registerOwner(app.url)
  const created = (await api(app.url, owner.accessToken).post('/api/tasks', { title: 'two tabs' })).body
  const storage = memoryStorage()
  const one = client(app.url, owner, storage, t)
  const two = client(app.url, owner, storage, t)
  await one.connect()
  await two.connect()
  t.not(one.clientId, two.clientId, 'each tab is its own writer')
  const [a, b] = await Promise.all([one.task(created.id), two.task(created.id)])
  // The same number of mutations from each: with one shared counter, these would use the same seqs.
  a.update({ status: 'in_progress' })
  b.update({ priority: 3 })
  await Promise.all([one.whenSynced({ timeoutMs: 20_000 }), two.whenSynced({ timeoutMs: 20_000 })])
  a.submit({ title: [8, ' from one'] })
  b.submit({ description: ['notes from two'] })
  await Promise.all([one.whenSynced({ timeoutMs: 20_000 }), two.whenSynced({ timeoutMs: 20_000 })])
  await Promise.all([one.whenSynced({ timeoutMs: 20_000 }), two.whenSynced({ timeoutMs: 20_000 })])
  const server = (await api(app.url, owner.accessToken).get(`/api/tasks/${created.id}`)).body
  t.match(server, { title: 'two tabs from one', description: 'notes from two', status: 'in_progress', priority: 3 }, 'the server has every edit of both tabs')
  t.same([a.snapshot.title, b.snapshot.title, a.rev], [server.title, server.title, server.rev])
  t.same([b.snapshot.description, b.rev], [server.description, server.rev])
  const ops = (await api(app.url, owner.accessToken).get(`/api/tasks/${created.id}/ops?from=2`)).body.ops as { clientId: string }[]
  t.same(new Set(ops.map((o) => o.clientId)), new Set([one.clientId, two.clientId]), 'committed under the two writers')
})

t.test("a closed tab's queue is adopted by the tab still open and delivered under the closed tab's clientId", async (t) => {
  const app = await startTestApp(t)
  const owner = await registerOwner(app.url)
  const created = (await api(app.url, owner.accessToken).post('/api/tasks', { title: 'adopt me' })).body
  const storage = memoryStorage()
  const stays = client(app.url, owner, storage, t)
  await stays.connect()
  await stays.task(created.id)
  const closing = client(app.url, owner, storage, t)
  await closing.connect()
  const gone = closing.clientId
  const task = await closing.task(created.id)
  closing.goOffline()
  task.update({ status: 'done' })
  task.submit({ title: [8, ' later'] })
  const adopted = next<{ clientId: string }>(stays, 'adopted')
  const delivered = next(stays, 'delivered')
  await closing.close()
  const ev = await adopted
  t.equal(ev.clientId, gone, 'the survivor adopts the closed writer')
  const mine = stays.openTasks.find((x) => x.id === created.id)!
  for (let i = 0; mine.snapshot.title !== 'adopt me later' && i < 200; i++) await next(mine, 'change')
  t.match(mine.snapshot, { title: 'adopt me later', status: 'done' }, 'the closed tab\'s edits arrive in the open one')
  const ops = (await api(app.url, owner.accessToken).get(`/api/tasks/${created.id}/ops?from=2`)).body.ops as { clientId: string; seq: number }[]
  t.ok(ops.length >= 1)
  t.same(new Set(ops.map((o) => o.clientId)), new Set([gone]), "delivered as the closed writer's mutations")
  t.equal(stays.pending, 0)
  // Its slot is free again: the next tab takes it back, queue empty.
  const third = client(app.url, owner, storage, t)
  await delivered
  await third.connect()
  t.equal(third.clientId, gone, 'a new tab takes the free slot back')
  t.equal(third.pending, 0)
})
