/**
 * The contract every BlobStore keeps, run against each implementation
 * (disk.test.ts, s3.test.ts): multipart uploads in any order, a part replaced,
 * ranges, absent keys, abort, small objects, and a large object streamed both
 * ways without its bytes in memory.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto'
import { Readable } from 'node:stream'
import type { Test } from 'tap'
import { BlobNotFoundError, type BlobStore } from '../../src/blobs/types.js'

async function readAll(s: Readable): Promise<Buffer> {
  const parts: Buffer[] = []
  for await (const c of s) parts.push(Buffer.from(c))
  return Buffer.concat(parts)
}

/** A stream of `size` pseudo-random bytes made on the fly (never held whole), hashed as it goes. */
function generated(size: number, seed: number, hash?: ReturnType<typeof createHash>): Readable {
  let left = size
  let x = seed
  return new Readable({
    read() {
      if (left === 0) return this.push(null)
      const n = Math.min(left, 64 * 1024)
      const b = Buffer.allocUnsafe(n)
      for (let i = 0; i < n; i++) {
        x = (x * 1103515245 + 12345) >>> 0
        b[i] = x >>> 24
      }
      left -= n
      hash?.update(b)
      this.push(b)
    },
  })
}

export function blobStoreContract(t: Test, name: string, makeStore: (t: Test) => Promise<BlobStore>, opts: { partSize: number }): void {
  const P = opts.partSize

  t.test(`${name}: parts sent out of order are joined in order`, async (t) => {
    const store = await makeStore(t)
    const key = `org/${randomUUID()}`
    const parts = [randomBytes(P), randomBytes(P), randomBytes(1000)]
    const id = await store.beginUpload(key)
    const stored = await Promise.all([2, 0, 1].map((n) => store.putPart(key, id, n, Readable.from([parts[n]]), parts[n].length)))
    await store.completeUpload(key, id, stored)
    const whole = Buffer.concat(parts)
    t.equal(await store.size(key), whole.length)
    t.ok((await readAll(await store.read(key))).equals(whole), 'the bytes come back in order')
    t.ok((await readAll(await store.read(key, { start: P - 10, end: P + 9 }))).equals(whole.subarray(P - 10, P + 10)), 'a range across parts')
    await store.delete(key)
    t.equal(await store.size(key), null, 'deleted')
    await t.rejects(store.read(key), BlobNotFoundError)
  })

  t.test(`${name}: a part stored again replaces the first`, async (t) => {
    const store = await makeStore(t)
    const key = `org/${randomUUID()}`
    const id = await store.beginUpload(key)
    const first = randomBytes(P)
    const second = randomBytes(P)
    await store.putPart(key, id, 0, Readable.from([first]), P)
    const p0 = await store.putPart(key, id, 0, Readable.from([second]), P)
    const last = randomBytes(10)
    const p1 = await store.putPart(key, id, 1, Readable.from([last]), 10)
    await store.completeUpload(key, id, [p1, p0])
    t.ok((await readAll(await store.read(key))).equals(Buffer.concat([second, last])))
  })

  t.test(`${name}: an aborted upload leaves nothing and can be aborted twice`, async (t) => {
    const store = await makeStore(t)
    const key = `org/${randomUUID()}`
    const id = await store.beginUpload(key)
    await store.putPart(key, id, 0, Readable.from([randomBytes(100)]), 100)
    await store.abortUpload(key, id)
    await store.abortUpload(key, id)
    t.equal(await store.size(key), null)
  })

  t.test(`${name}: small objects, absent keys`, async (t) => {
    const store = await makeStore(t)
    const key = `org/${randomUUID()}.thumb`
    const body = randomBytes(300)
    await store.put(key, body, 'image/webp')
    t.ok((await readAll(await store.read(key))).equals(body))
    t.equal(await store.size(`org/${randomUUID()}`), null)
    await store.delete(`org/${randomUUID()}`)
    t.pass('deleting an absent key is fine')
  })

  t.test(`${name}: a large object streams in and out in bounded memory`, async (t) => {
    const store = await makeStore(t)
    const key = `org/${randomUUID()}`
    const partSize = Math.max(P, 5 * 1024 * 1024)
    const parts = 16
    const inHash = createHash('sha256')
    const id = await store.beginUpload(key)
    const stored = []
    const before = process.memoryUsage().rss
    for (let n = 0; n < parts; n++) stored.push(await store.putPart(key, id, n, generated(partSize, n + 1, inHash), partSize))
    await store.completeUpload(key, id, stored)
    const outHash = createHash('sha256')
    let size = 0
    for await (const c of await store.read(key)) {
      outHash.update(c)
      size += c.length
    }
    t.equal(size, partSize * parts)
    t.equal(outHash.digest('hex'), inHash.digest('hex'), 'the same bytes')
    const growth = process.memoryUsage().rss - before
    // Less than the object: it was never held whole (the benchmark measures the server process precisely).
    t.ok(growth < partSize * parts, `memory grew ${(growth / 2 ** 20).toFixed(1)} MiB for ${(partSize * parts) / 2 ** 20} MiB moved`)
    await store.delete(key)
  })

  t.test(`${name}: signed URLs download the object when the store offers them`, async (t) => {
    const store = await makeStore(t)
    const key = `org/${randomUUID()}`
    const body = randomBytes(500)
    await store.put(key, body, 'application/octet-stream')
    const url = await store.signedUrl(key, { filename: 'a "b".txt', contentType: 'text/plain', disposition: 'attachment' })
    if (store.kind === 'disk') return t.equal(url, null, 'the disk has none: the server streams')
    const res = await fetch(url!)
    t.equal(res.status, 200)
    t.ok(Buffer.from(await res.arrayBuffer()).equals(body))
    t.match(res.headers.get('content-disposition') ?? '', /^attachment; filename="a _b_.txt"/)
  })
}
