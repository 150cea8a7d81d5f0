/**
 * The embedded blob store: files under DATA_DIR/blobs. Parts of an upload are
 * files in `.uploads/<uploadId>/`, each written to a temporary name and renamed,
 * so a part is whole or absent; complete concatenates them (streaming) into a
 * temporary file renamed onto the key.
 */
import { randomUUID } from 'node:crypto'
import { createReadStream, createWriteStream } from 'node:fs'
import { mkdir, rename, rm, stat, writeFile } from 'node:fs/promises'
import { dirname, join, resolve, sep } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { once } from 'node:events'
import type { Readable } from 'node:stream'
import { BlobNotFoundError, type BlobStore, type ByteRange, type StoredPart } from './types.js'

const SAFE_KEY = /^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/

export class DiskBlobStore implements BlobStore {
  readonly kind = 'disk' as const
  private readonly root: string

  constructor(root: string) {
    this.root = resolve(root)
  }

  async beginUpload(): Promise<string> {
    const id = randomUUID()
    await mkdir(this.uploadDir(id), { recursive: true })
    return id
  }

  async putPart(_key: string, uploadId: string, n: number, body: Readable, size: number): Promise<StoredPart> {
    const dir = this.uploadDir(uploadId)
    await mkdir(dir, { recursive: true })
    const tmp = join(dir, `${n}.${randomUUID()}.tmp`)
    try {
      await pipeline(body, createWriteStream(tmp))
      const written = (await stat(tmp)).size
      if (written !== size) throw new Error(`part ${n}: ${written} bytes written, ${size} expected`)
      await rename(tmp, join(dir, String(n)))
    } catch (err) {
      await rm(tmp, { force: true })
      throw err
    }
    return { n, etag: String(size) }
  }

  async completeUpload(key: string, uploadId: string, parts: StoredPart[]): Promise<void> {
    const dir = this.uploadDir(uploadId)
    const target = this.path(key)
    await mkdir(dirname(target), { recursive: true })
    const tmp = `${target}.${randomUUID()}.tmp`
    const out = createWriteStream(tmp)
    try {
      let failed: Error | null = null
      out.on('error', (err) => (failed = err))
      for (const p of [...parts].sort((a, b) => a.n - b.n)) {
        for await (const chunk of createReadStream(join(dir, String(p.n)))) {
          if (failed) throw failed
          if (!out.write(chunk)) await once(out, 'drain')
        }
      }
      await new Promise<void>((ok, fail) => out.end((err?: Error | null) => (err ? fail(err) : ok())))
      await rename(tmp, target)
    } catch (err) {
      out.destroy()
      await rm(tmp, { force: true })
      throw err
    }
    await rm(dir, { recursive: true, force: true })
  }

  async abortUpload(_key: string, uploadId: string): Promise<void> {
    await rm(this.uploadDir(uploadId), { recursive: true, force: true })
  }

  async put(key: string, body: Buffer): Promise<void> {
    const target = this.path(key)
    await mkdir(dirname(target), { recursive: true })
    const tmp = `${target}.${randomUUID()}.tmp`
    await writeFile(tmp, body)
    await rename(tmp, target)
  }

  async read(key: string, range?: ByteRange): Promise<Readable> {
    if ((await this.size(key)) === null) throw new BlobNotFoundError(key)
    return createReadStream(this.path(key), range ? { start: range.start, end: range.end } : {})
  }

  async size(key: string): Promise<number | null> {
    try {
      return (await stat(this.path(key))).size
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
      throw err
    }
  }

  async delete(key: string): Promise<void> {
    await rm(this.path(key), { force: true })
  }

  async signedUrl(): Promise<string | null> {
    return null
  }

  /** Keys are made by the server from ids, never from names; anything else is a bug. */
  private path(key: string): string {
    if (!SAFE_KEY.test(key) || key.split('/').some((s) => s === '.' || s === '..')) throw new Error(`unsafe blob key ${key}`)
    const p = join(this.root, key)
    if (!p.startsWith(this.root + sep)) throw new Error(`unsafe blob key ${key}`)
    return p
  }

  private uploadDir(uploadId: string): string {
    if (!/^[0-9a-f-]{36}$/.test(uploadId)) throw new BlobNotFoundError(uploadId)
    return join(this.root, '.uploads', uploadId)
  }
}
