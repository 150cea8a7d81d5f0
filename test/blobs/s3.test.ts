import t from 'tap'
import { S3BlobStore } from '../../src/blobs/s3.js'
import { startTestS3 } from '../helpers/s3.js'
import { blobStoreContract } from './contract.js'

// One s3rver for the file: each case uses its own keys.
const s3 = await startTestS3(t)

blobStoreContract(
  t,
  's3',
  async () =>
    new S3BlobStore({
      bucket: s3.bucket,
      region: 'us-east-1',
      endpoint: s3.endpoint,
      accessKeyId: s3.accessKeyId,
      secretAccessKey: s3.secretAccessKey,
      forcePathStyle: true,
      signedUrlTtlS: 60,
    }),
  { partSize: 5 * 1024 * 1024 },
)
