/**
 * Where a client keeps what must survive a restart: its clientId and seq
 * counter, the confirmed snapshot and unacknowledged ops of each open task, and
 * its comment outbox. Adapters are small key/value stores with atomic batches.
 * Several clients may share one storage (browser tabs): each writes under its
 * own writer slot (slots.ts), held with the storage's `locks`.
 */
import { processLocks, type WriterLocks } from './writer-locks.js'

/** Key → new value; `null` deletes the key. */
export type StorageChanges = Record<string, unknown>

/**
 * A durable key/value store for one client. Values are JSON-serializable.
 * Implement it to keep the offline queue anywhere (SQLite on mobile, …).
 */
export interface ClientStorage {
  /** Reads every entry; called once by `connect()`. */
  load(): Promise<Record<string, unknown>>
  /**
   * Applies the changes atomically (all or none) and resolves once they are
   * durable: the client sends a mutation after the save that records it resolves,
   * or, for an op typed while its task had nothing waiting, while it runs
   * (docs/protocol.md, "Sending before the write").
   */
  save(changes: StorageChanges): Promise<void>
  /** Releases resources (optional). */
  close?(): Promise<void>
  /**
   * The writer locks of this storage, shared by every client that opens it
   * (Web Locks in browsers, lease files for `fileStorage`). Without them the
   * client locks within its own process only: a storage that several
   * processes open must bring its locks.
   */
  readonly locks?: WriterLocks
  /**
   * True when values may hold Blobs (a structured-clone store such as IndexedDB):
   * a queued attachment is then kept as its Blob, whatever its size, and its upload
   * survives a reload. A JSON store keeps files up to 8 MiB, as base64.
   */
  readonly keepsBlobs?: boolean
}

/** Applies a batch to a plain map (shared by the adapters that hold a full copy). */
export function applyChanges(target: Record<string, unknown>, changes: StorageChanges): void {
  for (const [k, v] of Object.entries(changes)) {
    if (v === null || v === undefined) delete target[k]
    else target[k] = v
  }
}

/**
 * An in-memory store: nothing survives the process, but the same instance can
 * be handed to a new client to simulate an app restart. Values are copied, so
 * the client cannot mutate what was "persisted".
 */
export function memoryStorage(): ClientStorage {
  let data: Record<string, unknown> = {}
  return {
    locks: processLocks(),
    async load() {
      return JSON.parse(JSON.stringify(data)) as Record<string, unknown>
    },
    async save(changes) {
      const next = { ...data }
      applyChanges(next, JSON.parse(JSON.stringify(changes)) as StorageChanges)
      data = next
    },
  }
}
