/**
 * Attachments through the SDK against the real server: a task and its file made
 * offline, the app restarted from its storage, then the network returns: the
 * task is created, the upload runs (resuming from what the server has), and the
 * attachment appears live in another client's list. Pause/resume/cancel, and
 * the 5-chunk limit on parallel requests.
 */
import t from 'tap'
import { randomBytes, createHash } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import WebSocket from 'ws'
import { TaskSyncClient, memoryStorage, type Attachment, type ClientStorage, type WebSocketConstructor } from '../../src/client/index.js'
import { fileSource, nodeSha256, reopenFile } from '../../src/client/node.js'
import { api, registerOwner, startTestApp } from '../helpers/app.js'

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex')

t.test('a file attached offline (and kept over a restart) is uploaded on reconnecting and appears live on another client', async (t) => {
  const app = await startTestApp(t, { env: { ATTACHMENT_CHUNK_BYTES: '1024' } })
  const owner = await registerOwner(app.url)
  const make = (name: string, storage: ClientStorage, fetchFn?: typeof fetch) => {
    const c = new TaskSyncClient({
      url: app.url,
      credentials: { email: owner.user.email, password: owner.password, device: { name, platform: 'test' } },
      WebSocket: WebSocket as unknown as WebSocketConstructor,
      storage,
      sha256: nodeSha256,
      reopenSource: reopenFile,
      fetch: fetchFn,
    })
    t.teardown(() => c.close())
    return c
  }
  const storage = memoryStorage()
  const a = make('away', storage)
  await a.connect()
  a.goOffline()
  const task = a.createTask({ title: 'site visit' })
  const bytes = randomBytes(10_000)
  const upload = await task.attach(bytes, { name: 'photo-notes.bin' })
  t.equal(upload.status, 'waiting', 'offline: queued')
  await a.close()
  const rest = api(app.url, owner.accessToken)
  t.equal((await rest.get(`/api/tasks/${task.id}`)).status, 404, 'nothing reached the server')

  // Another client watching: it will see the attachment arrive live.
  const b = make('home', memoryStorage())
  await b.connect()

  // The app restarts from its storage, and the network is back; count parallel chunk PUTs on the way.
  let inFlight = 0
  let most = 0
  const counting: typeof fetch = async (input, init) => {
    const chunk = init?.method === 'PUT'
    if (chunk) most = Math.max(most, ++inFlight)
    try {
      return await fetch(input, init)
    } finally {
      if (chunk) inFlight--
    }
  }
  const again = make('away', storage, counting)
  await again.connect()
  const queued = [...again.attachments.uploads.values()]
  t.equal(queued.length, 1, 'the upload was restored from storage')
  const done = await queued[0].done
  t.match(done, { taskId: task.id, name: 'photo-notes.bin', size: bytes.length, sha256: sha(bytes) })
  t.ok(most <= 5 && most >= 2, `chunks went in parallel, at most 5 at once (${most})`)

  const tb = await b.task(task.id)
  const list = tb.attachments
  await new Promise<void>((resolve) => {
    const check = () => list.list.some((x: Attachment) => x.id === done.id) && resolve()
    list.on('change', check)
    check()
  })
  t.same(list.list.map((x) => x.id), [done.id], 'it is in the other client’s live list')
  const res = await b.attachments.download(task.id, done.id)
  t.equal(sha(Buffer.from(await res.arrayBuffer())), sha(bytes), 'and downloads')
  const part = await b.attachments.download(task.id, done.id, { start: 10, end: 19 })
  t.ok(Buffer.from(await part.arrayBuffer()).equals(bytes.subarray(10, 20)), 'a range of it')
  // Deleted on the server: it leaves the live list.
  t.equal((await rest.delete(`/api/tasks/${task.id}/attachments/${done.id}`)).status, 204)
  await new Promise<void>((resolve) => {
    const check = () => list.list.length === 0 && resolve()
    list.on('change', check)
    check()
  })
  t.pass('a deletion reaches the list')
})

t.test('pause, resume from what the server has, cancel; a Node file by path', async (t) => {
  const app = await startTestApp(t, { redis: false, env: { ATTACHMENT_CHUNK_BYTES: '1024' } })
  const owner = await registerOwner(app.url)
  const dir = mkdtempSync(join(tmpdir(), 'tasksync-sdk-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'big.bin')
  const bytes = randomBytes(64 * 1024)
  writeFileSync(file, bytes)
  const c = new TaskSyncClient({
    url: app.url,
    credentials: { email: owner.user.email, password: owner.password, device: { name: 'n', platform: 'test' } },
    WebSocket: WebSocket as unknown as WebSocketConstructor,
    sha256: nodeSha256,
  })
  t.teardown(() => c.close())
  await c.connect()
  const task = c.createTask({ title: 'files' })
  await c.whenSynced({ timeoutMs: 10_000 })
  const seen: number[] = []
  const h = await task.attach(await fileSource(file), {
    onProgress: (p) => {
      seen.push(p.loaded)
      if (p.loaded >= 16 * 1024 && p.status === 'uploading' && !paused) {
        paused = true
        h.pause()
      }
    },
  })
  let paused = false
  await new Promise<void>((resolve) => h.on('progress', (p) => p.status === 'paused' && resolve()))
  const rest = api(app.url, owner.accessToken)
  const state = (await rest.get(`/api/tasks/${task.id}/attachments/${h.id}/upload`)).body
  t.ok(state.received.length >= 16 && state.received.length < 64, `paused part way (${state.received.length} of 64 chunks on the server)`)
  h.resume()
  const done = await h.done
  t.equal(done.sha256, sha(bytes))
  t.equal(done.name, 'file', 'no name given: "file"')
  t.ok(seen.every((x, i) => i === 0 || x >= seen[i - 1] || seen[i - 1] === bytes.length), 'progress never goes back within a run')
  const other = await task.attach(Buffer.from('short-lived'), { name: 'x.txt' })
  await other.cancel()
  await t.rejects(other.done, /cancelled/)
  t.equal(other.status, 'cancelled')
  const list = (await rest.get(`/api/tasks/${task.id}/attachments`)).body.items
  t.same(list.map((x: Attachment) => x.id), [done.id])
})
