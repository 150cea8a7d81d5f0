/**
 * Attachment routes (docs/protocol.md, "Attachments"): open an upload, send its
 * chunks as raw bytes, complete it, list, download (with Range, or a redirect to
 * a signed URL), thumbnails, delete; the organization's storage use and quota.
 * Chunk bodies are streams handed to the service: the octet-stream parser below
 * is scoped to this plugin and never buffers.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { TaskSyncError } from '../protocol/errors.js'
import type { Readable } from 'node:stream'
import { contentDisposition } from '../blobs/content-disposition.js'
import { IdParams, bearer, errorResponses } from './schemas.js'
import {
  Attachment,
  AttachmentParams,
  ChunkParams,
  ChunkStored,
  OpenUploadBody,
  RangeHeaders,
  SetQuotaBody,
  StorageUse,
  UploadState,
} from './attachments-schemas.js'

const Bytes = Type.String({ description: 'the bytes of the file (or of the range asked for)' })
const Redirect = Type.Object({ url: Type.String({ description: 'a short-lived signed URL of the file, also in Location' }) })

/** One `bytes=` range of a `size`-byte file; null: serve it whole (absent, several ranges, or not bytes); 'unsatisfiable' → 416. */
export function parseRange(header: string | undefined, size: number): { start: number; end: number } | null | 'unsatisfiable' {
  if (!header) return null
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim())
  if (!m || (m[1] === '' && m[2] === '')) return null
  if (m[1] === '') {
    const suffix = Number(m[2])
    if (suffix === 0 || size === 0) return 'unsatisfiable'
    return { start: Math.max(0, size - suffix), end: size - 1 }
  }
  const start = Number(m[1])
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1)
  if (start >= size || end < start) return 'unsatisfiable'
  return { start, end }
}

const attachmentRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { attachments } = app
  app.addHook('onRequest', app.authenticate)
  // Raw chunk bytes: handed on as the request stream (the service counts and hashes them).
  app.addContentTypeParser('application/octet-stream', (_request, payload, done) => done(null, payload))

  app.post(
    '/api/tasks/:id/attachments',
    {
      schema: {
        tags: ['attachments'],
        summary: 'Open an upload (201), or answer where the same upload stands (200): {chunkSize, received, state, expiresAt}',
        security: bearer,
        params: IdParams,
        body: OpenUploadBody,
        response: { 200: UploadState, 201: UploadState, ...errorResponses(400, 401, 403, 404, 409, 410, 413, 503) },
      },
    },
    async (request, reply) => {
      const res = await attachments.open(request.principal, request.params.id, request.body)
      return reply.code(res.created ? 201 : 200).send(res.upload)
    },
  )

  app.get(
    '/api/tasks/:id/attachments',
    {
      schema: {
        tags: ['attachments'],
        summary: "A task's completed attachments, oldest first",
        security: bearer,
        params: IdParams,
        response: { 200: Type.Object({ items: Type.Array(Attachment) }), ...errorResponses(400, 401, 404) },
      },
    },
    async (request) => ({ items: await attachments.list(request.principal, request.params.id) }),
  )

  app.put(
    '/api/tasks/:id/attachments/:attachmentId/chunks/:n',
    {
      schema: {
        tags: ['attachments'],
        summary: 'Store chunk n (from 0) as raw bytes (application/octet-stream, exactly chunkSize bytes but the last); the same bytes again are fine, others are refused (409)',
        security: bearer,
        params: ChunkParams,
        consumes: ['application/octet-stream'],
        response: { 200: ChunkStored, ...errorResponses(400, 401, 403, 404, 409, 413, 503) },
      },
    },
    async (request) => {
      const { id, attachmentId, n } = request.params
      const body = request.body as Readable | undefined
      if (!body || typeof (body as Readable).pipe !== 'function') {
        throw new TaskSyncError('bad_request', 'a chunk is sent as raw bytes with Content-Type: application/octet-stream')
      }
      const length = request.headers['content-length'] === undefined ? undefined : Number(request.headers['content-length'])
      return attachments.putChunk(request.principal, id, attachmentId, n, body, length)
    },
  )

  app.post(
    '/api/tasks/:id/attachments/:attachmentId/complete',
    {
      schema: {
        tags: ['attachments'],
        summary: 'Check the size and SHA-256 of the chunks together and make the attachment visible (201; again: 200)',
        security: bearer,
        params: AttachmentParams,
        response: { 200: Attachment, 201: Attachment, ...errorResponses(400, 401, 403, 404, 413, 422, 503) },
      },
    },
    async (request, reply) => {
      const res = await attachments.complete(request.principal, request.params.id, request.params.attachmentId)
      return reply.code(res.duplicate ? 200 : 201).send(res.attachment)
    },
  )

  app.get(
    '/api/tasks/:id/attachments/:attachmentId/upload',
    {
      schema: {
        tags: ['attachments'],
        summary: 'Where an upload stands: {chunkSize, received, state, expiresAt}',
        security: bearer,
        params: AttachmentParams,
        response: { 200: UploadState, ...errorResponses(400, 401, 404) },
      },
    },
    async (request) => attachments.uploadState(request.principal, request.params.id, request.params.attachmentId),
  )

  app.get(
    '/api/tasks/:id/attachments/:attachmentId',
    {
      schema: {
        tags: ['attachments'],
        summary: 'Download the file (Range supported: 206/416), or 302 to a short-lived signed URL when the store offers one',
        security: bearer,
        params: AttachmentParams,
        headers: RangeHeaders,
        response: { 200: Bytes, 206: Bytes, 302: Redirect, ...errorResponses(400, 401, 404, 416) },
      },
    },
    async (request, reply) => {
      const d = await attachments.download(request.principal, request.params.id, request.params.attachmentId)
      const a = d.attachment
      const url = await attachments.signedUrl(d)
      reply.header('cache-control', 'private, no-store').header('x-content-type-options', 'nosniff')
      if (url) return reply.code(302).header('location', url).send({ url })
      const range = parseRange(request.headers.range, a.size)
      reply
        .header('content-type', a.contentType)
        .header('content-disposition', contentDisposition(d.disposition, a.name))
        .header('accept-ranges', 'bytes')
        .header('etag', `"${a.sha256}"`)
        // An attachment is never a page of this origin: no scripts, no plugins, even if a browser is told to show it.
        .header('content-security-policy', "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox")
      if (range === 'unsatisfiable') {
        // 416 is HTTP's own answer to a range outside the file; the body keeps the contract's error shape.
        return reply
          .code(416 as never)
          .header('content-range', `bytes */${a.size}`)
          .header('content-type', 'application/json; charset=utf-8')
          .send({ error: { code: 'bad_request', message: `the range ${request.headers.range} is outside the file's ${a.size} bytes` } } as never)
      }
      if (range) {
        reply.code(206).header('content-range', `bytes ${range.start}-${range.end}/${a.size}`).header('content-length', range.end - range.start + 1)
        return reply.send((await attachments.read(a, range)) as never)
      }
      reply.header('content-length', a.size)
      return reply.send(a.size === 0 ? '' : ((await attachments.read(a)) as never))
    },
  )

  app.get(
    '/api/tasks/:id/attachments/:attachmentId/thumbnail',
    {
      schema: {
        tags: ['attachments'],
        summary: 'The thumbnail of an image attachment (WebP, at most 256 px); 404 when it has none',
        security: bearer,
        params: AttachmentParams,
        response: { 200: Bytes, ...errorResponses(400, 401, 404) },
      },
    },
    async (request, reply) => {
      const body = await attachments.thumbnailOf(request.principal, request.params.id, request.params.attachmentId)
      return reply.header('content-type', 'image/webp').header('cache-control', 'private, max-age=3600').header('x-content-type-options', 'nosniff').send(body as never)
    },
  )

  app.delete(
    '/api/tasks/:id/attachments/:attachmentId',
    {
      schema: {
        tags: ['attachments'],
        summary: 'Delete an attachment or cancel an upload (its uploader or an admin): the bytes and the quota are released',
        security: bearer,
        params: AttachmentParams,
        response: { 204: Type.Null(), ...errorResponses(400, 401, 403, 404, 503) },
      },
    },
    async (request, reply) => {
      await attachments.delete(request.principal, request.params.id, request.params.attachmentId)
      return reply.code(204).send(null)
    },
  )

  app.get(
    '/api/storage',
    {
      schema: {
        tags: ['attachments'],
        summary: "The organization's storage: quota, bytes used (stored and reserved by open uploads), bytes left",
        security: bearer,
        response: { 200: StorageUse, ...errorResponses(401) },
      },
    },
    async (request) => withRemaining(await attachments.storageUse(request.principal.orgId)),
  )

  app.put(
    '/api/storage/quota',
    {
      schema: {
        tags: ['attachments'],
        summary: "Set the organization's storage quota in bytes (owners; null: the server's default)",
        security: bearer,
        body: SetQuotaBody,
        response: { 200: StorageUse, ...errorResponses(400, 401, 403, 503) },
      },
    },
    async (request) => withRemaining(await attachments.setQuota(request.principal, request.body.quotaBytes)),
  )
}

const withRemaining = (u: { usedBytes: number; quotaBytes: number }) => ({ ...u, remainingBytes: Math.max(0, u.quotaBytes - u.usedBytes) })

export default attachmentRoutes
