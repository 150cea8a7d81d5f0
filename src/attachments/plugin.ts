/**
 * Decorates `app.attachments`: the attachment service on the configured blob
 * store (S3 when S3_BUCKET is set, else DATA_DIR/blobs). Housekeeping calls its
 * `reclaim` after each run; announcements drain on close like comments.
 */
import fp from 'fastify-plugin'
import { blobStoreFor } from '../blobs/index.js'
import { attachmentRepository } from '../storage/attachments.js'
import { AttachmentService } from './service.js'

declare module 'fastify' {
  interface FastifyInstance {
    attachments: AttachmentService
  }
}

export default fp(
  async (app) => {
    const { config } = app
    const attachments = new AttachmentService({
      repo: attachmentRepository(app.database),
      store: await blobStoreFor(config),
      tasks: app.taskStore,
      bus: app.bus,
      instanceId: config.INSTANCE_ID,
      quotaBytes: config.ORG_STORAGE_QUOTA_BYTES,
      maxBytes: config.ATTACHMENT_MAX_BYTES,
      chunkBytes: config.ATTACHMENT_CHUNK_BYTES,
      uploadTtlMs: config.UPLOAD_TTL_H * 3_600_000,
      logger: app.log.child({ module: 'attachments' }),
    })
    app.decorate('attachments', attachments)
    app.addHook('preClose', () => attachments.idle())
  },
  { name: 'attachments', dependencies: ['config', 'storage', 'bus'] },
)
