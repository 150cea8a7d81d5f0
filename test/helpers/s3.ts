/**
 * A real S3-compatible server (s3rver) on loopback, port 0, storing under a temp
 * folder, with one bucket; closed and removed on teardown.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import S3rver from 's3rver'

export interface TestS3 {
  endpoint: string
  bucket: string
  accessKeyId: string
  secretAccessKey: string
  /** The env of an app that stores attachments there. */
  env: Record<string, string>
  close(): Promise<void>
}

export async function startTestS3(t?: { teardown(fn: () => unknown): void }): Promise<TestS3> {
  const directory = mkdtempSync(join(tmpdir(), 'tasksync-s3-'))
  const bucket = 'attachments'
  const server = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory, configureBuckets: [{ name: bucket, configs: [] }] })
  const { port } = (await server.run()) as { port: number }
  const endpoint = `http://127.0.0.1:${port}`
  let closed = false
  const close = async () => {
    if (closed) return
    closed = true
    await server.close()
    rmSync(directory, { recursive: true, force: true })
  }
  t?.teardown(close)
  const creds = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' }
  return {
    endpoint,
    bucket,
    ...creds,
    env: {
      S3_ENDPOINT: endpoint,
      S3_BUCKET: bucket,
      S3_REGION: 'us-east-1',
      S3_ACCESS_KEY_ID: creds.accessKeyId,
      S3_SECRET_ACCESS_KEY: creds.secretAccessKey,
      S3_FORCE_PATH_STYLE: 'true',
    },
    close,
  }
}
