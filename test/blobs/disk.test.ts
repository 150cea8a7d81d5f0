import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DiskBlobStore } from '../../src/blobs/disk.js'
import { blobStoreContract } from './contract.js'

blobStoreContract(
  t,
  'disk',
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'tasksync-blobs-'))
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    return new DiskBlobStore(dir)
  },
  { partSize: 64 * 1024 },
)

t.test('disk: keys that could leave the folder are refused', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tasksync-blobs-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const store = new DiskBlobStore(dir)
  for (const key of ['../x', 'a/../../x', '/etc/passwd', 'a//b', 'a\\b']) await t.rejects(store.size(key), /unsafe blob key/, key)
})
