/**
 * What the attachment routes guarantee beyond the protocol: other organizations
 * see nothing, viewers download but do not upload, limits and quota answer 413
 * with what is left, names and headers are safe, thumbnails, expiry and purge
 * reclaim the bytes, and changes reach subscribers, pull and history.
 */
import t from 'tap'
import { existsSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { randomUUID } from 'node:crypto'
import sharp from 'sharp'
import { addMember, api, registerOwner, startTestApp } from '../helpers/app.js'
import { TestSocket } from '../ws/helpers.js'
import { complete, download, newTask, openUpload, putChunk, randomFile, sha256, split, uploadWhole } from './helpers.js'

const CHUNK = 1024
const env = { ATTACHMENT_CHUNK_BYTES: String(CHUNK) }

t.test("another organization's ids answer 404 on every route; a viewer downloads but cannot upload", async (t) => {
  const { url } = await startTestApp(t, { redis: false, env })
  const a = await registerOwner(url)
  const b = await registerOwner(url)
  const taskId = await newTask(url, a.accessToken)
  const bytes = randomFile(1500)
  const att = await uploadWhole(url, a.accessToken, taskId, bytes)
  const open = await openUpload(url, a.accessToken, taskId, randomFile(10))
  const B = api(url, b.accessToken)
  const base = `/api/tasks/${taskId}/attachments`
  for (const id of [att.id, open.id]) {
    t.equal((await B.get(`${base}/${id}`)).status, 404, `GET ${id}`)
    t.equal((await B.get(`${base}/${id}/thumbnail`)).status, 404)
    t.equal((await B.get(`${base}/${id}/upload`)).status, 404)
    t.equal((await B.post(`${base}/${id}/complete`)).status, 404)
    t.equal((await B.delete(`${base}/${id}`)).status, 404)
    t.equal((await putChunk(url, b.accessToken, taskId, id, 0, Buffer.from('x'))).status, 404)
  }
  t.equal((await B.get(base)).status, 404)
  t.equal((await openUpload(url, b.accessToken, taskId, bytes, { id: att.id })).res.status, 404, 'opening on their task')
  // B's own task cannot reach A's attachment either.
  const bTask = await newTask(url, b.accessToken)
  t.equal((await B.get(`/api/tasks/${bTask}/attachments/${att.id}`)).status, 404)
  t.equal((await openUpload(url, b.accessToken, bTask, bytes, { id: att.id })).res.status, 201, 'the same id in another organization neither conflicts nor reveals')

  const viewer = await addMember(url, a.accessToken, 'viewer')
  const refused = await openUpload(url, viewer.accessToken, taskId, randomFile(10))
  t.equal(refused.res.status, 403)
  t.equal(refused.res.body.error.code, 'forbidden')
  t.equal((await putChunk(url, viewer.accessToken, taskId, open.id, 0, randomFile(10))).status, 403)
  t.equal((await api(url, viewer.accessToken).delete(`${base}/${att.id}`)).status, 403)
  const got = await download(url, viewer.accessToken, taskId, att.id)
  t.equal(got.status, 200)
  t.equal(sha256(got.bytes), sha256(bytes), 'a viewer downloads')
  const member = await addMember(url, a.accessToken, 'member')
  t.equal((await putChunk(url, member.accessToken, taskId, open.id, 0, randomFile(10))).status, 403, "another member cannot write into someone's upload")
})

t.test('limits: per file, and the quota (owner-adjustable) with how much is left', async (t) => {
  const { url } = await startTestApp(t, { redis: false, env: { ...env, ATTACHMENT_MAX_BYTES: '10000', ORG_STORAGE_QUOTA_BYTES: '20000' } })
  const owner = await registerOwner(url)
  const o = api(url, owner.accessToken)
  const taskId = await newTask(url, owner.accessToken)
  const big = await openUpload(url, owner.accessToken, taskId, randomFile(10001))
  t.equal(big.res.status, 413)
  t.equal(big.res.body.error.code, 'too_large')
  t.equal(big.res.body.error.details.maxBytes, 10000)
  t.same((await o.get('/api/storage')).body, { quotaBytes: 20000, usedBytes: 0, remainingBytes: 20000 })
  const member = await addMember(url, owner.accessToken, 'admin')
  t.equal((await api(url, member.accessToken).request('PUT', '/api/storage/quota', { quotaBytes: 1 })).status, 403, 'only an owner')
  t.equal((await o.request('PUT', '/api/storage/quota', { quotaBytes: 15000 })).status, 200)
  t.equal((await openUpload(url, owner.accessToken, taskId, randomFile(9000))).res.status, 201)
  const over = await openUpload(url, owner.accessToken, taskId, randomFile(9000))
  t.equal(over.res.status, 413)
  t.match(over.res.body.error, { code: 'too_large', details: { remainingBytes: 6000, quotaBytes: 15000, usedBytes: 9000 } })
  t.match(over.res.body.error.message, /6000 bytes/)
  t.equal((await openUpload(url, owner.accessToken, taskId, randomFile(6000))).res.status, 201, 'exactly what is left fits')
  t.same((await o.request('PUT', '/api/storage/quota', { quotaBytes: null })).body, { quotaBytes: 20000, usedBytes: 15000, remainingBytes: 5000 }, 'back to the default')
})

t.test('safe names and headers; thumbnails of images', async (t) => {
  const test = await startTestApp(t, { redis: false, env: { ...env, ATTACHMENT_CHUNK_BYTES: String(64 * 1024) } })
  const { url } = test
  const owner = await registerOwner(url)
  const taskId = await newTask(url, owner.accessToken)
  const html = await uploadWhole(url, owner.accessToken, taskId, Buffer.from('<script>alert(1)</script>'), { name: '../../evil\u202E.html', contentType: 'text/html' })
  t.equal(html.name, '_.._evil.html')
  const h = await download(url, owner.accessToken, taskId, html.id)
  t.match(h.headers.get('content-disposition'), /^attachment; filename="_.._evil.html"/)
  t.equal(h.headers.get('x-content-type-options'), 'nosniff')
  t.match(h.headers.get('content-security-policy'), /sandbox/)
  t.equal(html.thumbnail, false)

  const png = await sharp({ create: { width: 900, height: 600, channels: 3, background: { r: 200, g: 30, b: 30 } } }).png().toBuffer()
  const img = await uploadWhole(url, owner.accessToken, taskId, png, { name: 'photo.png', contentType: 'image/png' })
  t.equal(img.thumbnail, true)
  const p = await download(url, owner.accessToken, taskId, img.id)
  t.match(p.headers.get('content-disposition'), /^inline; filename="photo.png"/, 'a safe image type is shown inline')
  t.equal(p.headers.get('content-type'), 'image/png')
  const thumb = await fetch(`${url}/api/tasks/${taskId}/attachments/${img.id}/thumbnail`, { headers: { authorization: `Bearer ${owner.accessToken}` } })
  t.equal(thumb.status, 200)
  t.equal(thumb.headers.get('content-type'), 'image/webp')
  const meta = await sharp(Buffer.from(await thumb.arrayBuffer())).metadata()
  t.same([meta.format, meta.width, meta.height], ['webp', 256, 171], 'at most 256 px, proportions kept')
  t.ok(existsSync(join(test.app.config.DATA_DIR, 'blobs', owner.organization.id, `${img.id}.thumb`)), 'stored beside the file')
  const svg = await uploadWhole(url, owner.accessToken, taskId, Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'), { name: 'x.svg', contentType: 'image/svg+xml' })
  t.match((await download(url, owner.accessToken, taskId, svg.id)).headers.get('content-disposition'), /^attachment;/, 'SVG is never inline')
  const broken = await uploadWhole(url, owner.accessToken, taskId, Buffer.from('not really a jpeg'), { name: 'x.jpg', contentType: 'image/jpeg' })
  t.equal(broken.thumbnail, false, 'an image that does not decode gets no thumbnail, and still uploads')
  t.equal((await api(url, owner.accessToken).get(`/api/tasks/${taskId}/attachments/${html.id}/thumbnail`)).status, 404)
})

t.test('expiry reclaims the bytes and the reservation of open uploads; a purged task takes its attachments with it', async (t) => {
  const test = await startTestApp(t, { redis: false, env: { ...env, UPLOAD_TTL_H: '1', TOMBSTONE_TTL_DAYS: '1', HOUSEKEEPING_INTERVAL_S: '0' } })
  const { url, app } = test
  const owner = await registerOwner(url)
  const o = api(url, owner.accessToken)
  const taskId = await newTask(url, owner.accessToken)
  const bytes = randomFile(3000)
  const { id } = await openUpload(url, owner.accessToken, taskId, bytes)
  await putChunk(url, owner.accessToken, taskId, id, 0, split(bytes, CHUNK)[0])
  const uploads = join(app.config.DATA_DIR, 'blobs', '.uploads')
  t.equal(readdirSync(uploads).length, 1, 'a part on disk')
  t.equal((await o.get('/api/storage')).body.usedBytes, 3000)
  t.same(await app.attachments.reclaim(new Date(Date.now() + 30 * 60_000)), { expired: 0, purged: 0 }, 'not yet')
  t.same(await app.attachments.reclaim(new Date(Date.now() + 61 * 60_000)), { expired: 1, purged: 0 })
  t.same(readdirSync(uploads), [], 'its parts are gone')
  t.equal((await o.get('/api/storage')).body.usedBytes, 0, 'its reservation is released')
  t.equal((await o.get(`/api/tasks/${taskId}/attachments/${id}/upload`)).status, 404)

  const kept = await uploadWhole(url, owner.accessToken, taskId, randomFile(2000))
  const file = join(app.config.DATA_DIR, 'blobs', owner.organization.id, kept.id)
  t.ok(existsSync(file))
  t.equal((await o.delete(`/api/tasks/${taskId}`)).status, 204)
  t.ok(existsSync(file), 'a deleted task keeps its files until the horizon (it could be read as a tombstone)')
  const report = await app.housekeeping.run({ now: new Date(Date.now() + 2 * 86_400_000) })
  t.match(report, { ran: true, purged: { tasks: 1 }, attachments: { purged: 1 } })
  t.notOk(existsSync(file), 'the bytes went with the task')
  t.equal((await o.get('/api/storage')).body.usedBytes, 0)
})

t.test('completions and deletions reach subscribers, pull, tombstones and history', async (t) => {
  const { url } = await startTestApp(t, { redis: false, env })
  const owner = await registerOwner(url)
  const o = api(url, owner.accessToken)
  const taskId = await newTask(url, owner.accessToken)
  const first = await o.get('/api/sync/pull')
  const watcher = await TestSocket.ready(url, owner.accessToken)
  t.teardown(() => watcher.close())
  await watcher.request({ type: 'subscribe', taskIds: [taskId] }, 'subscribed')
  const att = await uploadWhole(url, owner.accessToken, taskId, randomFile(1200), { name: 'notes.txt', contentType: 'text/plain' })
  const live = await watcher.next('attachment')
  t.same(live, { type: 'attachment', taskId, attachment: att })
  const pulled = await o.get(`/api/sync/pull?cursor=${first.body.cursor}`)
  t.same(pulled.body.attachments, [att], 'pull returns it')
  t.equal((await o.delete(`/api/tasks/${taskId}/attachments/${att.id}`)).status, 204)
  const gone = await watcher.next('attachment', (m) => m.attachment.deleted)
  t.equal(gone.attachment.id, att.id)
  const after = await o.get(`/api/sync/pull?cursor=${pulled.body.cursor}`)
  t.same(after.body.tombstones, [{ kind: 'attachment', id: att.id, taskId }], 'and its tombstone')
  const history = await o.get(`/api/tasks/${taskId}/history`)
  const events = history.body.items.flatMap((e: { attachments?: unknown[] }) => e.attachments ?? [])
  t.match(events, [
    { attachmentId: att.id, action: 'attached', name: 'notes.txt', size: 1200, userId: owner.user.id },
    { attachmentId: att.id, action: 'removed', name: 'notes.txt', userId: owner.user.id },
  ])
  t.equal((await openUpload(url, owner.accessToken, taskId, randomFile(5), { id: randomUUID() })).res.status, 201)
})
