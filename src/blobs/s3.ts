/**
 * Attachments in any S3-compatible service through @aws-sdk/client-s3: one S3
 * multipart upload per attachment (part n is S3 part n + 1), parts streamed from
 * the request with their length, reads streamed with `Range`, downloads by
 * presigned GET URLs (@aws-sdk/s3-request-presigner).
 */
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  NoSuchKey,
  NoSuchUpload,
  NotFound,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3'
import { getSignedUrl } from '@aws-sdk/s3-request-presigner'
import type { Readable } from 'node:stream'
import { BlobNotFoundError, type BlobStore, type ByteRange, type StoredPart } from './types.js'
import { contentDisposition } from './content-disposition.js'

export interface S3Options {
  bucket: string
  region: string
  endpoint?: string
  accessKeyId?: string
  secretAccessKey?: string
  forcePathStyle: boolean
  /** Seconds a signed download URL is valid; 0: no signed URLs (the server streams). */
  signedUrlTtlS: number
}

const isMissing = (err: unknown) =>
  err instanceof NoSuchKey || err instanceof NotFound || (err as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode === 404

export class S3BlobStore implements BlobStore {
  readonly kind = 's3' as const
  readonly client: S3Client
  private readonly bucket: string

  constructor(private readonly opts: S3Options) {
    this.bucket = opts.bucket
    this.client = new S3Client({
      region: opts.region,
      endpoint: opts.endpoint,
      forcePathStyle: opts.forcePathStyle,
      credentials: opts.accessKeyId && opts.secretAccessKey ? { accessKeyId: opts.accessKeyId, secretAccessKey: opts.secretAccessKey } : undefined,
      // Streamed bodies of known length are sent as they are: the default CRC trailers
      // (aws-chunked encoding) are not understood by every S3-compatible service.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    })
  }

  async beginUpload(key: string): Promise<string> {
    const res = await this.client.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: key }))
    if (!res.UploadId) throw new Error('the S3 service answered no UploadId')
    return res.UploadId
  }

  async putPart(key: string, uploadId: string, n: number, body: Readable, size: number): Promise<StoredPart> {
    try {
      const res = await this.client.send(
        new UploadPartCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId, PartNumber: n + 1, Body: body, ContentLength: size }),
      )
      return { n, etag: res.ETag ?? '' }
    } catch (err) {
      if (err instanceof NoSuchUpload) throw new BlobNotFoundError(key)
      throw err
    }
  }

  async completeUpload(key: string, uploadId: string, parts: StoredPart[]): Promise<void> {
    const sorted = [...parts].sort((a, b) => a.n - b.n)
    await this.client.send(
      new CompleteMultipartUploadCommand({
        Bucket: this.bucket,
        Key: key,
        UploadId: uploadId,
        MultipartUpload: { Parts: sorted.map((p) => ({ PartNumber: p.n + 1, ETag: p.etag })) },
      }),
    )
  }

  async abortUpload(key: string, uploadId: string): Promise<void> {
    try {
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId }))
    } catch (err) {
      if (err instanceof NoSuchUpload || isMissing(err)) return
      // Some S3-compatible servers (s3rver) do not implement the abort: their parts stay
      // until the bucket's AbortIncompleteMultipartUpload lifecycle rule removes them.
      if ((err as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode === 405) return
      throw err
    }
  }

  async put(key: string, body: Buffer, contentType: string): Promise<void> {
    await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: body, ContentType: contentType }))
  }

  async read(key: string, range?: ByteRange): Promise<Readable> {
    try {
      const res = await this.client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: key, Range: range ? `bytes=${range.start}-${range.end}` : undefined }),
      )
      return res.Body as Readable
    } catch (err) {
      if (isMissing(err)) throw new BlobNotFoundError(key)
      throw err
    }
  }

  async size(key: string): Promise<number | null> {
    try {
      const res = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }))
      return res.ContentLength ?? 0
    } catch (err) {
      if (isMissing(err)) return null
      throw err
    }
  }

  async delete(key: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }))
  }

  async signedUrl(key: string, o: { filename: string; contentType: string; disposition: 'inline' | 'attachment' }): Promise<string | null> {
    if (this.opts.signedUrlTtlS <= 0) return null
    const command = new GetObjectCommand({
      Bucket: this.bucket,
      Key: key,
      ResponseContentType: o.contentType,
      ResponseContentDisposition: contentDisposition(o.disposition, o.filename),
    })
    return getSignedUrl(this.client, command, { expiresIn: this.opts.signedUrlTtlS })
  }
}
