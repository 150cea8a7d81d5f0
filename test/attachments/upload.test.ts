/**
 * The upload protocol through the real app, on the disk store and on a real S3
 * server (s3rver on loopback): resume after an interruption (and after a server
 * restart), chunks out of order and in parallel, idempotent chunks, a corrupted
 * chunk caught at completion, Range downloads, deletion.
 */
import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { api, registerOwner, startTestApp } from '../helpers/app.js'
import { startTestS3 } from '../helpers/s3.js'
import { complete, download, newTask, openUpload, putChunk, randomFile, sha256, split } from './helpers.js'

const CHUNK = 1024

for (const storeKind of ['disk', 's3'] as const) {
  t.test(`${storeKind}: an interrupted upload resumes (also after a restart) and completes with the right SHA-256`, async (t) => {
    const s3 = storeKind === 's3' ? await startTestS3(t) : null
    // One DATA_DIR for both instances (the disk store's bytes must outlive the first).
    const dataDir = mkdtempSync(join(tmpdir(), 'tasksync-attach-'))
    t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
    const env = { ATTACHMENT_CHUNK_BYTES: String(CHUNK), DATA_DIR: dataDir, ...(s3?.env ?? {}) }
    const first = await startTestApp(t, { redis: false, env })
    const owner = await registerOwner(first.url)
    const taskId = await newTask(first.url, owner.accessToken)
    const bytes = randomFile(CHUNK * 7 + 100)
    const chunks = split(bytes, CHUNK)
    const { id, res } = await openUpload(first.url, owner.accessToken, taskId, bytes, { name: 'report.pdf', contentType: 'application/pdf' })
    t.equal(res.status, 201)
    t.same(res.body.received, [])
    t.equal(res.body.chunkSize, CHUNK)
    // Some chunks, out of order, then the "connection" drops.
    for (const n of [3, 0, 5]) t.equal((await putChunk(first.url, owner.accessToken, taskId, id, n, chunks[n])).status, 200)
    // Same server: a repeated open answers 200 with what it has.
    const again = await openUpload(first.url, owner.accessToken, taskId, bytes, { id, name: 'report.pdf', contentType: 'application/pdf' })
    t.equal(again.res.status, 200)
    t.same(again.res.body.received, [0, 3, 5])
    // Restart: a new instance on the same database (and data dir for the disk: same DATA_DIR through env).
    await first.close()
    const second = await startTestApp(t, { redis: false, databaseUrl: first.databaseUrl, env })
    const resumed = await openUpload(second.url, owner.accessToken, taskId, bytes, { id, name: 'report.pdf', contentType: 'application/pdf' })
    t.equal(resumed.res.status, 200)
    t.same(resumed.res.body.received, [0, 3, 5], 'the server still has the chunks sent before the restart')
    const rest = chunks.map((_, n) => n).filter((n) => !resumed.res.body.received.includes(n))
    const answers = await Promise.all(rest.map((n) => putChunk(second.url, owner.accessToken, taskId, id, n, chunks[n])))
    t.same(answers.map((a) => a.status), rest.map(() => 200), 'the rest in parallel')
    const done = await complete(second.url, owner.accessToken, taskId, id)
    t.equal(done.status, 201)
    t.match(done.body, { id, taskId, name: 'report.pdf', contentType: 'application/pdf', size: bytes.length, sha256: sha256(bytes), deleted: false, thumbnail: false })
    t.equal((await complete(second.url, owner.accessToken, taskId, id)).status, 200, 'completing again answers the same attachment')
    const got = await download(second.url, owner.accessToken, taskId, id)
    if (s3) {
      t.equal(got.status, 302, 'S3: a redirect to a signed URL')
      const direct = await fetch(got.headers.get('location')!)
      t.equal(sha256(Buffer.from(await direct.arrayBuffer())), sha256(bytes))
    } else {
      t.equal(got.status, 200)
      t.equal(sha256(got.bytes), sha256(bytes))
      t.match(got.headers.get('content-disposition'), /^attachment; filename="report.pdf"/)
      t.equal(got.headers.get('x-content-type-options'), 'nosniff')
    }
  })

  t.test(`${storeKind}: a corrupted chunk is caught at completion; a resent chunk must be the same bytes`, async (t) => {
    const s3 = storeKind === 's3' ? await startTestS3(t) : null
    const { url } = await startTestApp(t, { redis: false, env: { ATTACHMENT_CHUNK_BYTES: String(CHUNK), S3_SIGNED_URL_TTL_S: '0', ...(s3?.env ?? {}) } })
    const owner = await registerOwner(url)
    const taskId = await newTask(url, owner.accessToken)
    const bytes = randomFile(CHUNK * 3)
    const chunks = split(bytes, CHUNK)
    const { id } = await openUpload(url, owner.accessToken, taskId, bytes)
    const bad = Buffer.from(chunks[1])
    bad[17] ^= 0xff
    t.equal((await putChunk(url, owner.accessToken, taskId, id, 0, chunks[0])).status, 200)
    t.equal((await putChunk(url, owner.accessToken, taskId, id, 1, bad)).status, 200, 'the server cannot know yet')
    t.equal((await putChunk(url, owner.accessToken, taskId, id, 0, chunks[0])).status, 200, 'the same bytes again: fine')
    const other = await putChunk(url, owner.accessToken, taskId, id, 0, chunks[2])
    t.equal(other.status, 409, 'other bytes for a stored chunk: refused')
    t.equal(other.body.error.code, 'already_exists')
    t.equal((await putChunk(url, owner.accessToken, taskId, id, 2, chunks[2].subarray(1))).status, 400, 'a chunk of the wrong length')
    t.equal((await putChunk(url, owner.accessToken, taskId, id, 3, chunks[2])).status, 400, 'a chunk past the end')
    const early = await complete(url, owner.accessToken, taskId, id)
    t.equal(early.status, 400)
    t.same(early.body.error.details.missing, [2])
    t.equal((await putChunk(url, owner.accessToken, taskId, id, 2, chunks[2])).status, 200)
    const caught = await complete(url, owner.accessToken, taskId, id)
    t.equal(caught.status, 422)
    t.equal(caught.body.error.code, 'invalid_op')
    t.match(caught.body.error.message, /SHA-256/)
    const state = await openUpload(url, owner.accessToken, taskId, bytes, { id })
    t.same(state.res.body.received, [], 'every chunk was dropped: the client sends them again')
    for (const [n, c] of chunks.entries()) t.equal((await putChunk(url, owner.accessToken, taskId, id, n, c)).status, 200)
    t.equal((await complete(url, owner.accessToken, taskId, id)).status, 201)
    const got = await download(url, owner.accessToken, taskId, id)
    t.equal(got.status, 200)
    t.equal(sha256(got.bytes), sha256(bytes))
  })

  t.test(`${storeKind}: Range downloads`, async (t) => {
    const s3 = storeKind === 's3' ? await startTestS3(t) : null
    const { url } = await startTestApp(t, { redis: false, env: { ATTACHMENT_CHUNK_BYTES: String(CHUNK), S3_SIGNED_URL_TTL_S: '0', ...(s3?.env ?? {}) } })
    const owner = await registerOwner(url)
    const taskId = await newTask(url, owner.accessToken)
    const bytes = randomFile(CHUNK * 2 + 10)
    const { id } = await openUpload(url, owner.accessToken, taskId, bytes)
    for (const [n, c] of split(bytes, CHUNK).entries()) await putChunk(url, owner.accessToken, taskId, id, n, c)
    t.equal((await complete(url, owner.accessToken, taskId, id)).status, 201)
    const cases: [string, number, number][] = [['bytes=0-9', 0, 9], ['bytes=1000-1100', 1000, 1100], ['bytes=2050-', 2050, bytes.length - 1], ['bytes=-5', bytes.length - 5, bytes.length - 1], ['bytes=2000-99999', 2000, bytes.length - 1]]
    for (const [range, start, end] of cases) {
      const r = await download(url, owner.accessToken, taskId, id, { range })
      t.equal(r.status, 206, range)
      t.equal(r.headers.get('content-range'), `bytes ${start}-${end}/${bytes.length}`, range)
      t.ok(r.bytes.equals(bytes.subarray(start, end + 1)), `${range}: the bytes`)
    }
    const outside = await download(url, owner.accessToken, taskId, id, { range: `bytes=${bytes.length}-` })
    t.equal(outside.status, 416)
    t.equal(outside.headers.get('content-range'), `bytes */${bytes.length}`)
    const whole = await download(url, owner.accessToken, taskId, id)
    t.equal(whole.status, 200)
    t.equal(whole.headers.get('accept-ranges'), 'bytes')
    t.ok(whole.bytes.equals(bytes))
  })
}

t.test('delete frees the bytes and the quota; the list and a second delete agree', async (t) => {
  const test = await startTestApp(t, { redis: false, env: { ATTACHMENT_CHUNK_BYTES: String(CHUNK) } })
  const { url } = test
  const owner = await registerOwner(url)
  const o = api(url, owner.accessToken)
  const taskId = await newTask(url, owner.accessToken)
  const bytes = randomFile(3000)
  const { id } = await openUpload(url, owner.accessToken, taskId, bytes)
  t.equal((await o.get('/api/storage')).body.usedBytes, 3000, 'reserved at open')
  for (const [n, c] of split(bytes, CHUNK).entries()) await putChunk(url, owner.accessToken, taskId, id, n, c)
  await complete(url, owner.accessToken, taskId, id)
  t.same((await o.get(`/api/tasks/${taskId}/attachments`)).body.items.map((a: { id: string }) => a.id), [id])
  t.equal((await o.delete(`/api/tasks/${taskId}/attachments/${id}`)).status, 204)
  t.equal((await o.get('/api/storage')).body.usedBytes, 0, 'released')
  t.same((await o.get(`/api/tasks/${taskId}/attachments`)).body.items, [])
  t.equal((await download(url, owner.accessToken, taskId, id)).status, 404)
  t.equal((await o.delete(`/api/tasks/${taskId}/attachments/${id}`)).status, 404)
  const { readdirSync } = await import('node:fs')
  const { join } = await import('node:path')
  const orgDir = join(test.app.config.DATA_DIR, 'blobs', owner.organization.id)
  t.same(readdirSync(orgDir), [], 'no bytes left on disk')
})
