/**
 * Browser storage: one IndexedDB database with a single key/value object store.
 * A batch is one readwrite transaction, durable when it completes. Values are
 * structured clones, so a queued upload's Blob is kept whole, at any size.
 */
import type { ClientStorage, StorageChanges } from './storage.js'
import { namedProcessLocks, webLockManager, webLocks } from './writer-locks.js'

const STORE = 'kv'

function request<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result)
    req.onerror = () => reject(req.error)
  })
}

/**
 * Keeps the client's state in the IndexedDB database `name` (default
 * `tasksync`). Use one name per signed-in account on a shared browser.
 */
export function indexedDbStorage(name = 'tasksync'): ClientStorage {
  let dbp: Promise<IDBDatabase> | null = null
  const open = (): Promise<IDBDatabase> => {
    const idb = (globalThis as { indexedDB?: IDBFactory }).indexedDB
    if (!idb) return Promise.reject(new Error('indexedDbStorage: IndexedDB is not available here'))
    if (dbp) return dbp
    dbp = new Promise<IDBDatabase>((resolve, reject) => {
      const req = idb.open(name, 1)
      req.onupgradeneeded = () => {
        if (!req.result.objectStoreNames.contains(STORE)) req.result.createObjectStore(STORE)
      }
      req.onsuccess = () => {
        const db = req.result
        // Another tab upgrading the database: let it, and reopen on the next use.
        db.onversionchange = () => {
          db.close()
          dbp = null
        }
        resolve(db)
      }
      req.onerror = () => reject(req.error)
      req.onblocked = () => reject(new Error(`indexedDbStorage: database ${name} is blocked by another tab`))
    })
    // A failed open is tried again on the next call rather than remembered.
    dbp.catch(() => (dbp = null))
    return dbp
  }
  const manager = webLockManager()
  return {
    // Values are structured clones: a queued attachment's Blob is kept as it is (attachments.ts).
    keepsBlobs: true,
    // Every tab of the origin sees the same Web Locks; without them only this page's clients are told apart.
    locks: manager ? webLocks(`tasksync:${name}`, manager) : namedProcessLocks(`indexeddb:${name}`),
    async load() {
      const db = await open()
      const tx = db.transaction(STORE, 'readonly')
      const store = tx.objectStore(STORE)
      const [keys, values] = await Promise.all([request(store.getAllKeys()), request(store.getAll())])
      const out: Record<string, unknown> = {}
      keys.forEach((k, i) => (out[String(k)] = values[i]))
      return out
    },
    async save(changes: StorageChanges) {
      const db = await open()
      await new Promise<void>((resolve, reject) => {
        const tx = db.transaction(STORE, 'readwrite', { durability: 'strict' })
        const store = tx.objectStore(STORE)
        for (const [k, v] of Object.entries(changes)) {
          if (v === null || v === undefined) store.delete(k)
          else store.put(v, k)
        }
        tx.oncomplete = () => resolve()
        tx.onerror = () => reject(tx.error)
        tx.onabort = () => reject(tx.error ?? new Error('indexedDbStorage: transaction aborted'))
      })
    },
    async close() {
      if (dbp) (await dbp).close()
      dbp = null
    },
  }
}
