/**
 * Attachments in the SDK: `task.attach(file, {name, onProgress})` queues an
 * upload that survives a reload or restart (its record, and the bytes of small
 * files or the path of a Node file, live in the client's storage under
 * `attachments`), hashes it, opens it on the server, sends the chunks the server
 * does not have yet (at most 5 at once) and completes it. `task.attachments` is
 * the live list of a task's attachments (REST, then `attachment` messages).
 */
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js'
import { bytesToHex } from '@noble/hashes/utils.js'
import { TaskSyncError } from '../protocol/errors.js'
import type { Attachment } from '../protocol/messages.js'
import { Emitter } from './emitter.js'
import { RestError, type FetchLike, type RestClient } from './http.js'
import type { ClientStorage } from './storage.js'
import { newId } from './ids.js'

/** Bytes an upload reads a range at a time: a Blob/File, a Uint8Array (Buffer), or a Node file (`fileSource`). */
export interface AttachSource {
  readonly size: number
  /** Bytes [start, end). */
  slice(start: number, end: number): Promise<Uint8Array>
  /** How to find the bytes again after a restart (JSON), or undefined when they cannot be. */
  readonly persisted?: StoredSource
}

/**
 * `bytes`: the file itself, base64, in a JSON storage (up to PERSIST_BYTES_MAX); `blob`: the
 * Blob, in a storage that keeps Blobs (IndexedDB), at any size; `file`: a Node file by path.
 */
export type StoredSource = { kind: 'bytes'; base64: string } | { kind: 'blob'; blob: Blob } | { kind: 'file'; path: string }

/** A restartable hash: the default is @noble/hashes (browsers); Node passes node:crypto's. */
export type Sha256Factory = () => { update(b: Uint8Array): void; digest(): string }

export const defaultSha256: Sha256Factory = () => {
  const h = nobleSha256.create()
  return { update: (b) => void h.update(b), digest: () => bytesToHex(h.digest()) }
}

/** In a JSON storage, files up to this size are kept whole (base64), so their upload survives a reload; a storage that keeps Blobs keeps any size. */
export const PERSIST_BYTES_MAX = 8 * 1024 * 1024
/** Chunks in flight per upload. */
export const PARALLEL_CHUNKS = 5

export type UploadStatus = 'hashing' | 'waiting' | 'uploading' | 'paused' | 'done' | 'failed' | 'cancelled'

export interface UploadProgress {
  id: string
  taskId: string
  loaded: number
  total: number
  status: UploadStatus
}

export interface AttachOptions {
  /** File name (default: the File's name, else `file`). */
  name?: string
  /** MIME type (default: the Blob's type, else application/octet-stream). */
  contentType?: string
  /** Called as chunks are confirmed by the server (and on every status change). */
  onProgress?: (p: UploadProgress) => void
  /** The attachment's id (default: a new UUID). */
  id?: string
}

/** What the storage keeps of a queued upload. */
interface StoredUpload {
  id: string
  taskId: string
  name: string
  contentType: string
  size: number
  sha256: string | null
  paused: boolean
  source: StoredSource | null
}

export interface UploadEvents {
  progress: UploadProgress
  done: Attachment
  error: Error
}

/** One upload: progress, pause, resume, cancel, and `done` (a promise of the attachment). */
export class UploadHandle extends Emitter<UploadEvents> {
  status: UploadStatus = 'waiting'
  loaded = 0
  error: Error | null = null
  readonly done: Promise<Attachment>
  private settle!: { ok: (a: Attachment) => void; fail: (e: Error) => void }
  private aborts = new Set<AbortController>()
  private running: Promise<void> | null = null

  constructor(readonly record: StoredUpload, readonly source: AttachSource | null, private readonly owner: AttachmentUploads) {
    super()
    this.done = new Promise((ok, fail) => (this.settle = { ok, fail }))
    this.done.catch(() => {})
  }

  get id(): string {
    return this.record.id
  }
  get total(): number {
    return this.record.size
  }

  get progress(): UploadProgress {
    return { id: this.id, taskId: this.record.taskId, loaded: this.loaded, total: this.total, status: this.status }
  }

  /** Stops sending (chunks in flight are abandoned; what the server has stays there). */
  pause(): void {
    if (this.isFinal()) return
    this.record.paused = true
    this.setStatus('paused')
    for (const a of this.aborts) a.abort()
    void this.owner.save()
  }

  /** Sends again from what the server has. */
  resume(): void {
    if (this.isFinal()) return
    this.record.paused = false
    this.setStatus('waiting')
    void this.owner.save()
    this.kick()
  }

  /** Abandons the upload and frees what the server has of it. */
  async cancel(): Promise<void> {
    if (this.isFinal()) return
    this.setStatus('cancelled')
    for (const a of this.aborts) a.abort()
    this.owner.forget(this)
    this.settle.fail(new TaskSyncError('bad_request', 'the upload was cancelled'))
    await this.owner.request('DELETE', this.path(''), undefined).catch(() => {})
  }

  /** Starts (or restarts) the work unless it runs, is paused, or is over. */
  kick(): void {
    if (this.running || this.record.paused || this.isFinal() || !this.owner.online()) return
    this.running = this.run().finally(() => (this.running = null))
  }

  private isFinal(): boolean {
    return this.status === 'done' || this.status === 'failed' || this.status === 'cancelled'
  }

  private setStatus(s: UploadStatus): void {
    this.status = s
    this.emitProgress()
  }

  private emitProgress(): void {
    const p = this.progress
    this.emit('progress', p)
    this.owner.opts.onProgress?.get(this.id)?.(p)
  }

  private path(suffix: string): string {
    return `/api/tasks/${this.record.taskId}/attachments/${this.id}${suffix}`
  }

  private async run(): Promise<void> {
    if (!this.source) return this.fail(new TaskSyncError('not_found', `the bytes of ${this.record.name} are no longer available on this device`))
    try {
      if (!this.record.sha256) {
        this.setStatus('hashing')
        this.record.sha256 = await hashSource(this.source, this.owner.opts.sha256)
        await this.owner.save()
      }
      for (let attempt = 0; ; attempt++) {
        if (this.record.paused || this.isFinal()) return
        this.setStatus('uploading')
        const r = this.record
        const state = await this.owner.request<{ chunkSize: number; received: number[]; state: string }>('POST', `/api/tasks/${r.taskId}/attachments`, {
          id: r.id, name: r.name, contentType: r.contentType, size: r.size, sha256: r.sha256,
        })
        await this.sendChunks(state.chunkSize, state.received)
        if (this.record.paused || this.isFinal()) return
        try {
          const attachment = await this.owner.request<Attachment>('POST', this.path('/complete'), undefined)
          return this.finish(attachment)
        } catch (err) {
          // The server's bytes did not hash right (it dropped them): send everything once more.
          if (err instanceof RestError && err.code === 'invalid_op' && attempt === 0) continue
          throw err
        }
      }
    } catch (err) {
      if (this.record.paused || this.isFinal()) return
      const e = err as Error
      if (isTransient(e)) {
        this.setStatus('waiting')
        this.owner.retryLater(this)
        return
      }
      this.fail(e)
    }
  }

  private async sendChunks(chunkSize: number, received: number[]): Promise<void> {
    const size = this.record.size
    const count = Math.ceil(size / chunkSize)
    const have = new Set(received)
    const sizeOf = (n: number) => Math.min(chunkSize, size - n * chunkSize)
    this.loaded = received.reduce((s, n) => s + (n < count ? sizeOf(n) : 0), 0)
    this.emitProgress()
    const todo = Array.from({ length: count }, (_, n) => n).filter((n) => !have.has(n))
    let failure: unknown = null
    const worker = async () => {
      while (todo.length && !failure && !this.record.paused && !this.isFinal()) {
        const n = todo.shift()!
        const bytes = await this.source!.slice(n * chunkSize, n * chunkSize + sizeOf(n))
        const abort = new AbortController()
        this.aborts.add(abort)
        try {
          await this.owner.putChunk(this.path(`/chunks/${n}`), bytes, abort.signal)
          this.loaded += bytes.length
          this.emitProgress()
        } catch (err) {
          failure ??= err
        } finally {
          this.aborts.delete(abort)
        }
      }
    }
    await Promise.all(Array.from({ length: Math.min(PARALLEL_CHUNKS, todo.length) }, worker))
    if (failure && !this.record.paused && !this.isFinal()) throw failure
  }

  private finish(a: Attachment): void {
    this.loaded = this.total
    this.setStatus('done')
    this.owner.forget(this)
    this.owner.onServer(a)
    this.emit('done', a)
    this.settle.ok(a)
  }

  private fail(e: Error): void {
    this.error = e
    this.setStatus('failed')
    this.owner.forget(this)
    this.emit('error', e)
    this.settle.fail(e)
  }
}

export interface TaskAttachmentEvents {
  change: Attachment[]
}

/** The live list of one task's attachments (completed, not deleted), oldest first. */
export class TaskAttachments extends Emitter<TaskAttachmentEvents> {
  private readonly byId = new Map<string, Attachment>()
  /** The sorted list, kept until the next change: the same array for every read in between (what useSyncExternalStore needs). */
  private sorted: Attachment[] | null = null
  loaded = false

  constructor(readonly taskId: string) {
    super()
  }

  /** The attachments, oldest first; the same array until the list changes. */
  get list(): Attachment[] {
    return (this.sorted ??= [...this.byId.values()].sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id)))
  }

  /** @internal */
  apply(a: Attachment): void {
    if (a.deleted) this.byId.delete(a.id)
    else this.byId.set(a.id, a)
    this.sorted = null
    this.emit('change', this.list)
  }

  /** @internal */
  replace(items: Attachment[]): void {
    this.byId.clear()
    for (const a of items) this.byId.set(a.id, a)
    this.loaded = true
    this.sorted = null
    this.emit('change', this.list)
  }
}

export interface AttachmentUploadsOptions {
  baseUrl: string
  fetch: FetchLike
  rest: RestClient
  token: () => Promise<string>
  /** Headers sent with every request besides the token (the device key of an identity provider's token). */
  headers?: () => Record<string, string>
  /** The client's storage (its slot of it, once connected). */
  storage: () => ClientStorage
  sha256: Sha256Factory
  online: () => boolean
  /** Per-upload progress callbacks (not persisted). */
  onProgress?: Map<string, (p: UploadProgress) => void>
  /** Turns a stored source back into bytes (Node: files by path). */
  reopen?: (s: StoredSource) => AttachSource | null
}

/** Every upload of a client and the attachment lists of its tasks. */
export class AttachmentUploads {
  readonly uploads = new Map<string, UploadHandle>()
  private readonly lists = new Map<string, TaskAttachments>()
  private timers = new Set<ReturnType<typeof setTimeout>>()
  private closed = false
  readonly opts: AttachmentUploadsOptions & { onProgress: Map<string, (p: UploadProgress) => void> }

  constructor(opts: AttachmentUploadsOptions) {
    this.opts = { ...opts, onProgress: opts.onProgress ?? new Map() }
  }

  /** Queues an upload of `file` to a task; it starts when the client is online. */
  async attach(taskId: string, file: Blob | Uint8Array | AttachSource, opts: AttachOptions = {}): Promise<UploadHandle> {
    const source = await toSource(file, this.opts.storage().keepsBlobs === true)
    const named = (file as { name?: unknown }).name
    const record: StoredUpload = {
      id: opts.id ?? newId(),
      taskId,
      name: opts.name ?? (typeof named === 'string' && named ? named : 'file'),
      contentType: opts.contentType ?? ((file as { type?: unknown }).type as string | undefined) ?? 'application/octet-stream',
      size: source.size,
      sha256: null,
      paused: false,
      source: source.persisted ?? null,
    }
    if (!record.contentType) record.contentType = 'application/octet-stream'
    if (opts.onProgress) this.opts.onProgress.set(record.id, opts.onProgress)
    const handle = new UploadHandle(record, source, this)
    this.uploads.set(record.id, handle)
    await this.save()
    handle.kick()
    return handle
  }

  /** The live list of a task's attachments; loads it from the server the first time. */
  of(taskId: string): TaskAttachments {
    let l = this.lists.get(taskId)
    if (!l) {
      this.lists.set(taskId, (l = new TaskAttachments(taskId)))
      if (this.opts.online()) void this.refresh(taskId)
    }
    return l
  }

  /** Reloads a task's list from the server. */
  async refresh(taskId: string): Promise<Attachment[]> {
    const page = await this.request<{ items: Attachment[] }>('GET', `/api/tasks/${taskId}/attachments`, undefined)
    const list = this.of(taskId)
    list.replace(page.items)
    return list.list
  }

  /** Downloads an attachment (or a byte range of it): follows a redirect to a signed URL. */
  async download(taskId: string, id: string, range?: { start: number; end: number }): Promise<Response> {
    const headers: Record<string, string> = { ...this.opts.headers?.(), authorization: `Bearer ${await this.opts.token()}` }
    if (range) headers.range = `bytes=${range.start}-${range.end}`
    const res = await this.opts.fetch(`${this.opts.baseUrl}/api/tasks/${taskId}/attachments/${id}`, { headers })
    if (!res.ok) throw new RestError(res.status === 404 ? 'not_found' : 'unavailable', `download answered ${res.status}`, res.status)
    return res
  }

  /** The thumbnail of an image attachment (WebP), for an object URL. */
  async thumbnail(taskId: string, id: string): Promise<Blob> {
    const res = await this.opts.fetch(`${this.opts.baseUrl}/api/tasks/${taskId}/attachments/${id}/thumbnail`, {
      headers: { ...this.opts.headers?.(), authorization: `Bearer ${await this.opts.token()}` },
    })
    if (!res.ok) throw new RestError('not_found', `thumbnail answered ${res.status}`, res.status)
    return res.blob()
  }

  /** Deletes an attachment (or cancels an upload) on the server. */
  async remove(taskId: string, id: string): Promise<void> {
    await this.request('DELETE', `/api/tasks/${taskId}/attachments/${id}`, undefined)
  }

  /** @internal An `attachment` message, a completion of ours, or a pull. */
  onServer(a: Attachment): void {
    this.lists.get(a.taskId)?.apply(a)
  }

  /** @internal Restores the queue from storage (at connect). */
  restore(stored: unknown): void {
    for (const r of (Array.isArray(stored) ? stored : []) as StoredUpload[]) {
      if (this.uploads.has(r.id)) continue
      const source = r.source ? restoreSource(r.source, this.opts.reopen) : null
      const h = new UploadHandle(r, source, this)
      if (r.paused) h.status = 'paused'
      this.uploads.set(r.id, h)
    }
  }

  /** @internal The client went online (or is): every waiting upload goes on. */
  wake(): void {
    for (const h of this.uploads.values()) h.kick()
    for (const l of this.lists.values()) void this.refresh(l.taskId).catch(() => {})
  }

  online(): boolean {
    return !this.closed && this.opts.online()
  }

  /** @internal */
  async save(): Promise<void> {
    const queue = [...this.uploads.values()].map((h) => h.record)
    await this.opts.storage().save({ attachments: queue.length ? queue : null })
  }

  /** @internal */
  forget(h: UploadHandle): void {
    this.uploads.delete(h.id)
    this.opts.onProgress.delete(h.id)
    void this.save()
  }

  /** @internal */
  retryLater(h: UploadHandle): void {
    if (this.closed) return
    const timer = setTimeout(() => {
      this.timers.delete(timer)
      h.kick()
    }, 500 + Math.random() * 1500)
    this.timers.add(timer)
  }

  /** @internal */
  request<T>(method: string, path: string, body: unknown): Promise<T> {
    return this.opts.rest.request<T>(method, path, body)
  }

  /** @internal */
  async putChunk(path: string, bytes: Uint8Array, signal: AbortSignal): Promise<void> {
    let res: Response
    try {
      res = await this.opts.fetch(`${this.opts.baseUrl}${path}`, {
        method: 'PUT',
        headers: { ...this.opts.headers?.(), authorization: `Bearer ${await this.opts.token()}`, 'content-type': 'application/octet-stream' },
        body: bytes as unknown as BodyInit,
        signal,
      })
    } catch (err) {
      throw new RestError('unavailable', `network error on PUT ${path}: ${(err as Error).message}`, 0)
    }
    const text = await res.text()
    if (res.ok) return
    let code: string | undefined
    try {
      code = JSON.parse(text)?.error?.code
    } catch {}
    throw new RestError((code as never) ?? 'unavailable', `PUT ${path} answered ${res.status}: ${text.slice(0, 200)}`, res.status)
  }

  close(): void {
    this.closed = true
    for (const t of this.timers) clearTimeout(t)
    this.timers.clear()
    for (const h of this.uploads.values()) if (h.status === 'uploading') h.pause()
  }
}

/** Network trouble, a server restart, or a task the server does not know yet (created offline, not yet synced). */
function isTransient(e: Error): boolean {
  if (!(e instanceof TaskSyncError)) return true
  return e.code === 'unavailable' || e.code === 'internal' || e.code === 'rate_limited' || e.code === 'not_found' || e.code === 'unauthorized'
}

async function hashSource(source: AttachSource, factory: Sha256Factory): Promise<string> {
  const h = factory()
  const step = 4 * 1024 * 1024
  for (let at = 0; at < source.size; at += step) h.update(await source.slice(at, Math.min(source.size, at + step)))
  return h.digest()
}

function bytesSource(bytes: Uint8Array, persisted?: StoredSource): AttachSource {
  return { size: bytes.length, slice: async (s, e) => bytes.subarray(s, e), persisted }
}

function blobSource(blob: Blob, persisted?: StoredSource): AttachSource {
  return { size: blob.size, slice: async (s, e) => new Uint8Array(await blob.slice(s, e).arrayBuffer()), persisted }
}

const hasBlob = typeof Blob !== 'undefined'

/** The bytes of `file` and how the storage can keep them: as a Blob where it keeps Blobs, else base64 up to PERSIST_BYTES_MAX. */
async function toSource(file: Blob | Uint8Array | AttachSource, keepsBlobs: boolean): Promise<AttachSource> {
  if (file instanceof Uint8Array) {
    if (keepsBlobs && hasBlob) return bytesSource(file, { kind: 'blob', blob: new Blob([file as Uint8Array<ArrayBuffer>]) })
    return bytesSource(file, file.length <= PERSIST_BYTES_MAX ? { kind: 'bytes', base64: toBase64(file) } : undefined)
  }
  if (hasBlob && file instanceof Blob) {
    const blob = file
    if (keepsBlobs) return blobSource(blob, { kind: 'blob', blob })
    const persisted = blob.size <= PERSIST_BYTES_MAX ? { kind: 'bytes' as const, base64: toBase64(new Uint8Array(await blob.arrayBuffer())) } : undefined
    return blobSource(blob, persisted)
  }
  return file as AttachSource
}

/** A kept source back as bytes to send (null: they are gone, the upload fails and says so). */
function restoreSource(s: StoredSource, reopen?: (s: StoredSource) => AttachSource | null): AttachSource | null {
  if (s.kind === 'bytes') return bytesSource(fromBase64(s.base64), s)
  if (s.kind === 'blob') return hasBlob && s.blob instanceof Blob ? blobSource(s.blob, s) : null
  return reopen?.(s) ?? null
}

function toBase64(b: Uint8Array): string {
  let s = ''
  for (let i = 0; i < b.length; i += 0x8000) s += String.fromCharCode(...b.subarray(i, i + 0x8000))
  return btoa(s)
}

function fromBase64(s: string): Uint8Array {
  const bin = atob(s)
  const out = new Uint8Array(bin.length)
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i)
  return out
}
