/**
 * Attachments: the upload protocol (open, chunks, complete), downloads, deletion,
 * the organization's quota, and housekeeping of what uploads leave behind.
 * Bytes stream from the request to the blob store and from the store to the
 * response; only hashes and counters stay in memory. A completed or deleted
 * attachment is announced on `org:<orgId>` (an AttachmentNotice), like comments.
 */
import { createHash } from 'node:crypto'
import { Transform, type Readable } from 'node:stream'
import { TaskSyncError } from '../protocol/errors.js'
import type { Attachment } from '../protocol/messages.js'
import type { Principal } from '../auth/principal.js'
import type { Bus } from '../bus/types.js'
import type { AttachmentNotice } from '../bus/notices.js'
import { Announcer } from '../bus/announcer.js'
import type { TaskStore } from '../storage/task-store.js'
import { KeyedQueue } from '../sequencer/keyed-queue.js'
import {
  QuotaExceededError,
  toAttachment,
  type AttachmentRecord,
  type AttachmentRepository,
  type StorageUse,
} from '../storage/attachments.js'
import { BlobNotFoundError, type BlobStore, type ByteRange } from '../blobs/types.js'
import { INLINE_TYPES, THUMBNAIL_TYPES, sanitizeContentType, sanitizeName } from './names.js'
import { THUMBNAIL_TYPE, makeThumbnail } from './thumbnails.js'

export interface AttachmentServiceOptions {
  repo: AttachmentRepository
  store: BlobStore
  tasks: Pick<TaskStore, 'loadTask'>
  bus: Bus
  instanceId: string
  quotaBytes: number
  maxBytes: number
  chunkBytes: number
  uploadTtlMs: number
  logger?: { warn(obj: unknown, msg?: string): void; error(obj: unknown, msg?: string): void }
}

export interface OpenRequest {
  id: string
  name: string
  contentType: string
  size: number
  sha256: string
}

/** Where an upload stands: what a client needs to send the rest. */
export interface UploadState {
  chunkSize: number
  received: number[]
  state: 'uploading' | 'ready'
  expiresAt: string
}

export interface Download {
  attachment: AttachmentRecord
  /** Served inline (a safe image type) or as a download. */
  disposition: 'inline' | 'attachment'
}

export type AttachmentListener = (notice: AttachmentNotice) => void

/** Blob keys: made from ids only, never from names. */
const blobKey = (a: { orgId: string; id: string }) => `${a.orgId}/${a.id}`
const thumbKey = (a: { orgId: string; id: string }) => `${a.orgId}/${a.id}.thumb`

export class AttachmentService {
  private readonly announcer: Announcer<AttachmentNotice>
  private readonly completing = new KeyedQueue()

  constructor(private readonly opts: AttachmentServiceOptions) {
    this.announcer = new Announcer(opts.bus, opts.instanceId, opts.logger)
  }

  onAttachment(listener: AttachmentListener): () => void {
    return this.announcer.listen(listener)
  }

  idle(): Promise<void> {
    return this.announcer.idle()
  }

  /** Opens an upload (created: true) or answers where an identical one stands (a resume). */
  async open(principal: Principal, taskId: string, req: OpenRequest): Promise<{ created: boolean; upload: UploadState }> {
    this.mayWrite(principal)
    await this.liveTask(principal.orgId, taskId)
    const name = sanitizeName(req.name)
    const contentType = sanitizeContentType(req.contentType)
    const sha256 = req.sha256.toLowerCase()
    const existing = await this.opts.repo.load(principal.orgId, req.id)
    if (existing) return { created: false, upload: await this.resume(existing, principal, taskId, { ...req, name, contentType, sha256 }) }
    if (req.size > this.opts.maxBytes) {
      throw new TaskSyncError('too_large', `the file is ${req.size} bytes, over the limit of ${this.opts.maxBytes} per file`, { maxBytes: this.opts.maxBytes })
    }
    const key = { orgId: principal.orgId, id: req.id }
    const uploadId = req.size > 0 ? await this.opts.store.beginUpload(blobKey(key)) : null
    let opened: AttachmentRecord | null
    try {
      opened = await this.opts.repo.open(
        {
          ...key,
          taskId,
          name,
          contentType,
          size: req.size,
          sha256,
          chunkSize: this.opts.chunkBytes,
          uploadId,
          createdBy: principal.userId,
          expiresAt: new Date(Date.now() + this.opts.uploadTtlMs).toISOString(),
        },
        this.opts.quotaBytes,
      )
    } catch (err) {
      if (uploadId) await this.opts.store.abortUpload(blobKey(key), uploadId).catch(() => {})
      if (err instanceof QuotaExceededError) throw quotaError(err.use, req.size)
      throw err
    }
    if (!opened) {
      // A racing open of the same id won: answer as its resume.
      if (uploadId) await this.opts.store.abortUpload(blobKey(key), uploadId).catch(() => {})
      const again = await this.opts.repo.load(principal.orgId, req.id)
      if (!again) throw new TaskSyncError('unavailable', 'the upload changed while it was opened; retry')
      return { created: false, upload: await this.resume(again, principal, taskId, { ...req, name, contentType, sha256 }) }
    }
    return { created: true, upload: { chunkSize: opened.chunkSize, received: [], state: 'uploading', expiresAt: opened.expiresAt } }
  }

  /**
   * Stores chunk n from a stream of exactly `length` bytes. A chunk already stored
   * is compared by SHA-256: the same bytes are fine, others are refused (409).
   */
  async putChunk(principal: Principal, taskId: string, id: string, n: number, body: Readable, length: number | undefined): Promise<{ n: number; size: number; sha256: string }> {
    this.mayWrite(principal)
    const a = await this.ownUpload(principal, taskId, id)
    const count = chunkCount(a)
    if (n >= count) throw new TaskSyncError('bad_request', `chunk ${n} is past the end: the upload has ${count} chunk(s) (0…${count - 1})`)
    const expected = Math.min(a.chunkSize, a.size - n * a.chunkSize)
    if (length !== expected) {
      throw new TaskSyncError('bad_request', `chunk ${n} must be exactly ${expected} bytes with a Content-Length saying so (got ${length ?? 'none'})`)
    }
    const stored = await this.opts.repo.chunk(a.orgId, id, n)
    if (stored || a.state === 'ready') {
      const sha256 = await hashOf(body, expected)
      const known = stored ?? null
      if (known && known.sha256 === sha256) return { n, size: known.size, sha256 }
      throw new TaskSyncError('already_exists', `chunk ${n} is already stored with different bytes`, { n })
    }
    const meter = new Meter(expected)
    body.on('error', (err) => meter.destroy(err))
    let part
    try {
      part = await this.opts.store.putPart(blobKey(a), a.uploadId!, n, body.pipe(meter), expected)
    } catch (err) {
      if (err instanceof BlobNotFoundError) throw new TaskSyncError('not_found', `upload ${id} has expired`)
      if (meter.bytes !== expected) throw new TaskSyncError('bad_request', `chunk ${n}: the body ended after ${meter.bytes} of ${expected} bytes`)
      throw err
    }
    if (meter.bytes !== expected) throw new TaskSyncError('bad_request', `chunk ${n}: ${meter.bytes} bytes received, ${expected} expected`)
    const sha256 = meter.digest()
    const recorded = await this.opts.repo.recordChunk(a.orgId, id, { n, size: expected, sha256, etag: part.etag })
    // A racing resend with other bytes recorded first; the whole-file check at completion still guards the result.
    if (recorded.sha256 !== sha256) throw new TaskSyncError('already_exists', `chunk ${n} is already stored with different bytes`, { n })
    return { n, size: expected, sha256 }
  }

  /**
   * Joins the chunks, checks the size and SHA-256 of the whole, makes the
   * thumbnail and makes the attachment visible. A completed one answers again
   * (duplicate). A mismatch drops every chunk (the client uploads them again).
   */
  async complete(principal: Principal, taskId: string, id: string): Promise<{ attachment: Attachment; duplicate: boolean }> {
    this.mayWrite(principal)
    return this.completing.run(`${principal.orgId}/${id}`, async () => {
      const a = await this.ownUpload(principal, taskId, id)
      if (a.state === 'ready') return { attachment: toAttachment(a), duplicate: true }
      const chunks = await this.opts.repo.chunks(a.orgId, id)
      const have = new Set(chunks.map((c) => c.n))
      const missing: number[] = []
      for (let n = 0; n < chunkCount(a); n++) if (!have.has(n)) missing.push(n)
      if (missing.length) throw new TaskSyncError('bad_request', `chunks missing: ${missing.slice(0, 20).join(', ')}${missing.length > 20 ? '…' : ''}`, { missing })
      const key = blobKey(a)
      if (a.size === 0) await this.opts.store.put(key, Buffer.alloc(0), a.contentType)
      else await this.opts.store.completeUpload(key, a.uploadId!, chunks.map((c) => ({ n: c.n, etag: c.etag ?? '' })))
      const { size, sha256 } = await this.measure(key)
      if (size !== a.size || sha256 !== a.sha256) {
        await this.opts.store.delete(key)
        const uploadId = a.size > 0 ? await this.opts.store.beginUpload(key) : null
        await this.opts.repo.restart(a.orgId, id, uploadId)
        throw new TaskSyncError('invalid_op', `the bytes received (${size} bytes, SHA-256 ${sha256}) are not the file declared (${a.size} bytes, ${a.sha256}); every chunk was dropped: upload them again`, {
          path: size !== a.size ? 'size' : 'sha256',
          received: [],
        })
      }
      const thumbnail = await this.thumbnail(a)
      const ready = await this.opts.repo.markReady(a.orgId, id, thumbnail, new Date().toISOString())
      if (!ready) {
        const now = await this.opts.repo.load(a.orgId, id)
        if (now?.state === 'ready') return { attachment: toAttachment(now), duplicate: true }
        throw new TaskSyncError('not_found', `attachment ${id} not found`)
      }
      await this.opts.repo.recordHistory({ orgId: a.orgId, taskId, attachmentId: id, action: 'attached', name: a.name, size: a.size, userId: principal.userId, deviceId: principal.deviceId })
      await this.announce(ready)
      return { attachment: toAttachment(ready), duplicate: false }
    })
  }

  /** Where an upload stands (GET of an open upload, for a client resuming without reopening). */
  async uploadState(principal: Principal, taskId: string, id: string): Promise<UploadState> {
    const a = await this.visible(principal, taskId, id, true)
    if (a.state === 'deleted') throw new TaskSyncError('not_found', `attachment ${id} not found`)
    return this.stateOf(a)
  }

  /** Ready attachments of a live task, oldest first. */
  async list(principal: Principal, taskId: string): Promise<Attachment[]> {
    await this.task(principal.orgId, taskId)
    return (await this.opts.repo.listReady(principal.orgId, taskId)).map(toAttachment)
  }

  /** A ready attachment to download, and how to serve it. */
  async download(principal: Principal, taskId: string, id: string): Promise<Download> {
    const a = await this.visible(principal, taskId, id, false)
    return { attachment: a, disposition: INLINE_TYPES.has(a.contentType) ? 'inline' : 'attachment' }
  }

  read(a: AttachmentRecord, range?: ByteRange): Promise<Readable> {
    return this.opts.store.read(blobKey(a), range)
  }

  signedUrl(d: Download): Promise<string | null> {
    return this.opts.store.signedUrl(blobKey(d.attachment), { filename: d.attachment.name, contentType: d.attachment.contentType, disposition: d.disposition })
  }

  async thumbnailOf(principal: Principal, taskId: string, id: string): Promise<Readable> {
    const a = await this.visible(principal, taskId, id, false)
    if (!a.thumbnailType) throw new TaskSyncError('not_found', `attachment ${id} has no thumbnail`)
    return this.opts.store.read(thumbKey(a))
  }

  /** Deletes an attachment (its uploader or an admin), frees its bytes and its quota; also cancels an open upload. */
  async delete(principal: Principal, taskId: string, id: string): Promise<void> {
    this.mayWrite(principal)
    const a = await this.visible(principal, taskId, id, true)
    if (a.createdBy !== principal.userId && principal.role !== 'admin' && principal.role !== 'owner') {
      throw new TaskSyncError('forbidden', 'only the uploader or an admin may delete an attachment')
    }
    const deleted = await this.opts.repo.markDeleted(a.orgId, id, new Date().toISOString())
    if (!deleted) throw new TaskSyncError('not_found', `attachment ${id} not found`)
    await this.dropBytes(a)
    if (a.state === 'ready') {
      await this.opts.repo.recordHistory({ orgId: a.orgId, taskId, attachmentId: id, action: 'removed', name: a.name, size: a.size, userId: principal.userId, deviceId: principal.deviceId })
      await this.announce(deleted)
    }
  }

  storageUse(orgId: string): Promise<StorageUse> {
    return this.opts.repo.storageUse(orgId, this.opts.quotaBytes)
  }

  /** Sets the organization's quota (null: back to ORG_STORAGE_QUOTA_BYTES); owners only. */
  setQuota(principal: Principal, quotaBytes: number | null): Promise<StorageUse> {
    if (principal.role !== 'owner') throw new TaskSyncError('forbidden', "only an owner may change the organization's storage quota")
    return this.opts.repo.setQuota(principal.orgId, quotaBytes, this.opts.quotaBytes)
  }

  /**
   * Reclaims bytes: uploads open past UPLOAD_TTL_H, and attachments of tasks
   * purged past the tombstone horizon. Bytes go first, then the row: a crash in
   * between leaves a row that the next run finishes, never orphaned bytes.
   */
  async reclaim(now = new Date()): Promise<{ expired: number; purged: number }> {
    const at = now.toISOString()
    let expired = 0
    let purged = 0
    for (;;) {
      const batch = await this.opts.repo.expired(at, 100)
      let progressed = false
      for (const a of batch) {
        await this.dropBytes(a)
        if (await this.opts.repo.remove(a.orgId, a.id, 'expired', at)) {
          expired++
          progressed = true
        }
      }
      if (batch.length < 100 || !progressed) break
    }
    for (;;) {
      const batch = await this.opts.repo.orphaned(100)
      let progressed = false
      for (const a of batch) {
        await this.dropBytes(a)
        if (await this.opts.repo.remove(a.orgId, a.id, 'orphaned', at)) {
          purged++
          progressed = true
        }
      }
      if (batch.length < 100 || !progressed) break
    }
    return { expired, purged }
  }

  // ── helpers ──

  private async resume(a: AttachmentRecord, principal: Principal, taskId: string, req: OpenRequest): Promise<UploadState> {
    const same = a.taskId === taskId && a.name === req.name && a.contentType === req.contentType && a.size === req.size && a.sha256 === req.sha256
    if (!same || a.state === 'deleted') throw new TaskSyncError('already_exists', `attachment ${a.id} already exists`)
    if (a.createdBy !== principal.userId) throw new TaskSyncError('already_exists', `attachment ${a.id} already exists`)
    if (a.state === 'uploading' && Date.parse(a.expiresAt) <= Date.now()) throw new TaskSyncError('not_found', `upload ${a.id} has expired`)
    return this.stateOf(a)
  }

  private async stateOf(a: AttachmentRecord): Promise<UploadState> {
    const received = a.state === 'ready' ? Array.from({ length: chunkCount(a) }, (_, i) => i) : (await this.opts.repo.chunks(a.orgId, a.id)).map((c) => c.n)
    return { chunkSize: a.chunkSize, received, state: a.state === 'ready' ? 'ready' : 'uploading', expiresAt: a.expiresAt }
  }

  private mayWrite(principal: Principal): void {
    if (principal.role === 'viewer') throw new TaskSyncError('forbidden', 'a viewer may download attachments but not upload or delete them')
  }

  private async task(orgId: string, taskId: string) {
    const task = await this.opts.tasks.loadTask(orgId, taskId)
    if (!task) throw new TaskSyncError('not_found', `task ${taskId} not found`)
    return task
  }

  private async liveTask(orgId: string, taskId: string) {
    const task = await this.task(orgId, taskId)
    if (task.deleted) throw new TaskSyncError('task_deleted', `task ${taskId} is deleted`, { rev: task.rev })
    return task
  }

  /** The attachment of this task in the caller's organization; 404 for anything else (ids of others reveal nothing). */
  private async visible(principal: Principal, taskId: string, id: string, uploadsToo: boolean): Promise<AttachmentRecord> {
    await this.task(principal.orgId, taskId)
    const a = await this.opts.repo.load(principal.orgId, id)
    if (!a || a.taskId !== taskId || a.state === 'deleted' || (!uploadsToo && a.state !== 'ready')) {
      throw new TaskSyncError('not_found', `attachment ${id} not found`)
    }
    return a
  }

  /** An upload the caller opened, still open (or already complete), not expired. */
  private async ownUpload(principal: Principal, taskId: string, id: string): Promise<AttachmentRecord> {
    const a = await this.visible(principal, taskId, id, true)
    if (a.createdBy !== principal.userId) throw new TaskSyncError('forbidden', 'only the uploader may send the chunks of an upload')
    if (a.state === 'uploading' && Date.parse(a.expiresAt) <= Date.now()) throw new TaskSyncError('not_found', `upload ${id} has expired`)
    return a
  }

  private async measure(key: string): Promise<{ size: number; sha256: string }> {
    const hash = createHash('sha256')
    let size = 0
    for await (const chunk of await this.opts.store.read(key)) {
      hash.update(chunk)
      size += chunk.length
    }
    return { size, sha256: hash.digest('hex') }
  }

  private async thumbnail(a: AttachmentRecord): Promise<string | null> {
    if (!THUMBNAIL_TYPES.has(a.contentType)) return null
    try {
      const thumb = await makeThumbnail(await this.opts.store.read(blobKey(a)))
      if (!thumb) return null
      await this.opts.store.put(thumbKey(a), thumb, THUMBNAIL_TYPE)
      return THUMBNAIL_TYPE
    } catch (err) {
      this.opts.logger?.warn({ err, attachmentId: a.id }, 'thumbnail failed; the attachment has none')
      return null
    }
  }

  private async dropBytes(a: AttachmentRecord): Promise<void> {
    if (a.uploadId) await this.opts.store.abortUpload(blobKey(a), a.uploadId)
    await this.opts.store.delete(blobKey(a))
    if (a.thumbnailType) await this.opts.store.delete(thumbKey(a))
  }

  private async announce(a: AttachmentRecord): Promise<void> {
    const task = await this.opts.tasks.loadTask(a.orgId, a.taskId)
    this.announcer.announce({
      kind: 'attachment',
      from: this.opts.instanceId,
      orgId: a.orgId,
      taskId: a.taskId,
      projectId: task?.projectId ?? null,
      attachment: toAttachment(a),
    })
  }
}

const chunkCount = (a: { size: number; chunkSize: number }) => Math.ceil(a.size / a.chunkSize)

function quotaError(use: StorageUse, wanted: number): TaskSyncError {
  const remainingBytes = Math.max(0, use.quotaBytes - use.usedBytes)
  return new TaskSyncError('too_large', `the organization's storage quota leaves ${remainingBytes} bytes; this file needs ${wanted}`, {
    remainingBytes,
    quotaBytes: use.quotaBytes,
    usedBytes: use.usedBytes,
  })
}

/** Counts and hashes bytes on their way through; fails past `limit`. */
class Meter extends Transform {
  bytes = 0
  private readonly hash = createHash('sha256')
  constructor(private readonly limit: number) {
    super()
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null, data?: Buffer) => void): void {
    this.bytes += chunk.length
    if (this.bytes > this.limit) return done(new TaskSyncError('bad_request', `the chunk is longer than ${this.limit} bytes`))
    this.hash.update(chunk)
    done(null, chunk)
  }
  digest(): string {
    return this.hash.digest('hex')
  }
}

/** SHA-256 of a stream of at most `limit` bytes, consumed and discarded. */
async function hashOf(body: Readable, limit: number): Promise<string> {
  const hash = createHash('sha256')
  let n = 0
  for await (const chunk of body) {
    n += chunk.length
    if (n > limit) throw new TaskSyncError('bad_request', `the chunk is longer than ${limit} bytes`)
    hash.update(chunk)
  }
  return hash.digest('hex')
}
