/**
 * Node storage: the whole state in one JSON file, replaced atomically (write a
 * temp file, fsync, rename) so a crash leaves either the old or the new state.
 * Several clients (in this process or others) may share the file, each in its
 * own writer slot: every save reads the file afresh under a mutex and changes
 * only its keys, and writer locks are lease files (file-locks.ts).
 * Imports node:fs, so it is exported from `tasksync/client/node`, never from
 * the browser entry.
 */
import { open, readFile, rename, unlink } from 'node:fs/promises'
import { fileLocks, withFileMutex } from './file-locks.js'
import { applyChanges, type ClientStorage, type StorageChanges } from './storage.js'

/** Keeps the client's state in the file at `path` (created on the first save). */
export function fileStorage(path: string): ClientStorage {
  let n = 0
  const tag = Math.random().toString(36).slice(2, 10)

  const read = async (): Promise<Record<string, unknown>> => {
    try {
      return JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {}
      throw err
    }
  }

  const write = async (changes: StorageChanges): Promise<void> => {
    const next = await read()
    applyChanges(next, changes)
    // Unique even across two instances on one path in one process (an app restarting its client).
    const tmp = `${path}.${process.pid}.${tag}.${++n}.tmp`
    const fh = await open(tmp, 'w')
    try {
      await fh.writeFile(JSON.stringify(next))
      await fh.sync()
    } finally {
      await fh.close()
    }
    try {
      await rename(tmp, path)
    } catch (err) {
      await unlink(tmp).catch(() => {})
      throw err
    }
  }

  return {
    locks: fileLocks(path),
    async load() {
      return withFileMutex(path, read)
    },
    save(changes) {
      // Saves are applied one at a time, in call order (the mutex queues them).
      const snapshot = JSON.parse(JSON.stringify(changes)) as StorageChanges
      return withFileMutex(path, () => write(snapshot))
    },
  }
}
