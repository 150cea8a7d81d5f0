/** Wire shapes of the attachment routes (docs/protocol.md, "Attachments"). */
import { Type } from 'typebox'
import { Uuid } from './schemas.js'

const Timestamp = Type.String({ format: 'date-time' })
const Sha256 = Type.String({ pattern: '^[0-9a-fA-F]{64}$' })

export const Attachment = Type.Object({
  id: Uuid,
  taskId: Uuid,
  name: Type.String(),
  contentType: Type.String(),
  size: Type.Integer({ minimum: 0 }),
  sha256: Type.String(),
  createdBy: Uuid,
  createdAt: Timestamp,
  deleted: Type.Boolean(),
  thumbnail: Type.Boolean(),
})

export const OpenUploadBody = Type.Object(
  {
    id: Uuid,
    name: Type.String({ minLength: 1, maxLength: 1024 }),
    contentType: Type.String({ minLength: 1, maxLength: 255 }),
    size: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
    sha256: Sha256,
  },
  { additionalProperties: false },
)

export const UploadState = Type.Object({
  /** Bytes of every chunk but the last. */
  chunkSize: Type.Integer({ minimum: 1 }),
  /** Chunk numbers the server has stored, ascending. */
  received: Type.Array(Type.Integer({ minimum: 0 })),
  /** 'uploading' until complete; 'ready' after. */
  state: Type.Union([Type.Literal('uploading'), Type.Literal('ready')]),
  expiresAt: Timestamp,
})

export const AttachmentParams = Type.Object({ id: Uuid, attachmentId: Uuid })
export const ChunkParams = Type.Object({ id: Uuid, attachmentId: Uuid, n: Type.Integer({ minimum: 0, maximum: 1_000_000 }) })

export const ChunkStored = Type.Object({ n: Type.Integer(), size: Type.Integer(), sha256: Type.String() })

export const StorageUse = Type.Object({
  quotaBytes: Type.Integer(),
  usedBytes: Type.Integer(),
  remainingBytes: Type.Integer(),
})

export const SetQuotaBody = Type.Object(
  { quotaBytes: Type.Union([Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }), Type.Null()]) },
  { additionalProperties: false },
)

export const RangeHeaders = Type.Object({ range: Type.Optional(Type.String({ maxLength: 200 })) })
