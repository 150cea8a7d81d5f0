/**
 * Picks the blob store of a configuration: S3 when S3_BUCKET is set, else the disk
 * under DATA_DIR/blobs. The S3 store (the AWS SDK, ~10 MB resident) is loaded only
 * when it is the one configured.
 */
import { join } from 'node:path'
import type { Config } from '../config/index.js'
import { DiskBlobStore } from './disk.js'
import type { BlobStore } from './types.js'

export async function blobStoreFor(config: Readonly<Config>): Promise<BlobStore> {
  if (config.S3_BUCKET) {
    const { S3BlobStore } = await import('./s3.js')
    return new S3BlobStore({
      bucket: config.S3_BUCKET,
      region: config.S3_REGION,
      endpoint: config.S3_ENDPOINT,
      accessKeyId: config.S3_ACCESS_KEY_ID,
      secretAccessKey: config.S3_SECRET_ACCESS_KEY,
      forcePathStyle: config.S3_FORCE_PATH_STYLE === 'true',
      signedUrlTtlS: config.S3_SIGNED_URL_TTL_S,
    })
  }
  return new DiskBlobStore(join(config.DATA_DIR, 'blobs'))
}

export type { BlobStore } from './types.js'
