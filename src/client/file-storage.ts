/**
 * Node storage: the whole state in one JSON file, replaced atomically (write a
 * temp file, fsync, rename) so a crash leaves either the old or the new state.
 * Imports node:fs, so it is exported from `tasksync/client/node`, never from
 * the browser entry.
 */
import { open, readFile, rename, unlink } from 'node:fs/promises'
import { applyChanges, type ClientStorage, type StorageChanges } from './storage.js'

/** Keeps the client's state in the file at `path` (created on the first save). */
export function fileStorage(path: string): ClientStorage {
  let data: Record<string, unknown> | null = null
  let chain: Promise<void> = Promise.resolve()
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
    const next = { ...(data ?? (await read())) }
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
    data = next
  }

  return {
    async load() {
      await chain
      data = await read()
      return JSON.parse(JSON.stringify(data)) as Record<string, unknown>
    },
    save(changes) {
      // Saves are applied one at a time, in call order.
      const snapshot = JSON.parse(JSON.stringify(changes)) as StorageChanges
      const p = chain.then(() => write(snapshot))
      chain = p.catch(() => {})
      return p
    },
  }
}
