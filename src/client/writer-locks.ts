/**
 * Writer locks: a clientId names ONE live writer (PROTOCOL.md §3), so every
 * client of a storage holds the lock of the writer slot it writes as, for as
 * long as it lives. Other clients of the storage wait on the locks of the
 * slots they know: a lock granted to them means its holder is gone (a tab
 * closed, a process exited) and its queue is theirs to deliver.
 *
 * Browsers use Web Locks (released by the browser when a tab closes, crashes or
 * reloads) and a BroadcastChannel to tell the other tabs of a new writer;
 * elsewhere the locks live in this process (file storage adds lease files
 * for other processes: see file-locks.ts).
 */

/** A held writer lock. */
export interface WriterLease {
  /** Gives the slot up (another client may then take or adopt it). */
  release(): Promise<void>
}

export interface WriterLocks {
  /** Takes the lock of writer `clientId` when no live client holds or waits for it; null otherwise. */
  tryAcquire(clientId: string): Promise<WriterLease | null>
  /** Waits until the lock of `clientId` is free, then takes it; rejects (AbortError) once `signal` aborts. */
  acquire(clientId: string, signal: AbortSignal): Promise<WriterLease>
  /** Tells the other clients of this storage that a writer slot was created. */
  announce(clientId: string): void
  /** Calls `fn` with every writer slot announced by another client; returns the function that stops it. */
  onAnnounce(fn: (clientId: string) => void): () => void
}

const abortError = () => Object.assign(new Error('aborted'), { name: 'AbortError' })

interface Entry {
  held: boolean
  waiters: (() => void)[]
}

/**
 * Locks held in this process: for storages that only this process opens (memory),
 * and as the in-process layer of the file locks. One registry per storage.
 */
export function processLocks(): WriterLocks & { isHeld(clientId: string): boolean } {
  const entries = new Map<string, Entry>()
  const listeners = new Set<(id: string) => void>()
  const entry = (id: string) => {
    let e = entries.get(id)
    if (!e) entries.set(id, (e = { held: false, waiters: [] }))
    return e
  }
  const lease = (id: string): WriterLease => {
    let released = false
    return {
      async release() {
        if (released) return
        released = true
        const e = entry(id)
        const next = e.waiters.shift()
        // Handed straight to the next waiter: a tryAcquire in between never sees it free.
        if (next) next()
        else {
          e.held = false
          entries.delete(id)
        }
      },
    }
  }
  return {
    isHeld: (id) => entries.get(id)?.held ?? false,
    async tryAcquire(id) {
      const e = entry(id)
      if (e.held) return null
      e.held = true
      return lease(id)
    },
    acquire(id, signal) {
      return new Promise((resolve, reject) => {
        if (signal.aborted) return reject(abortError())
        const e = entry(id)
        if (!e.held) {
          e.held = true
          return resolve(lease(id))
        }
        const grant = () => {
          signal.removeEventListener('abort', abort)
          resolve(lease(id))
        }
        const abort = () => {
          const i = e.waiters.indexOf(grant)
          if (i >= 0) e.waiters.splice(i, 1)
          reject(abortError())
        }
        e.waiters.push(grant)
        signal.addEventListener('abort', abort, { once: true })
      })
    },
    announce(id) {
      for (const fn of [...listeners]) queueMicrotask(() => fn(id))
    },
    onAnnounce(fn) {
      listeners.add(fn)
      return () => listeners.delete(fn)
    },
  }
}

interface LockManagerLike {
  request(name: string, options: { ifAvailable?: boolean; signal?: AbortSignal }, cb: (lock: unknown) => Promise<void> | void): Promise<unknown>
}

/** The browser's Web Locks API, when there is one. */
export function webLockManager(): LockManagerLike | undefined {
  return (globalThis as { navigator?: { locks?: LockManagerLike } }).navigator?.locks
}

/**
 * Web Locks named `<prefix>:writer:<clientId>` (shared by every tab of the
 * origin), with a BroadcastChannel `<prefix>:writers` for announcements.
 */
export function webLocks(prefix: string, locks: LockManagerLike): WriterLocks {
  const name = (id: string) => `${prefix}:writer:${id}`
  const Channel = (globalThis as { BroadcastChannel?: typeof BroadcastChannel }).BroadcastChannel
  const channelName = `${prefix}:writers`
  const hold = (id: string, options: { ifAvailable?: boolean; signal?: AbortSignal }): Promise<WriterLease | null> =>
    new Promise((resolve, reject) => {
      locks
        .request(name(id), options, (lock) => {
          if (!lock) return resolve(null)
          // The lock is held until this promise settles: until release() (or the tab goes away).
          return new Promise<void>((done) => resolve({ release: async () => done() }))
        })
        .catch(reject)
    })
  return {
    tryAcquire: (id) => hold(id, { ifAvailable: true }),
    acquire: (id, signal) => hold(id, { signal }) as Promise<WriterLease>,
    announce(id) {
      if (!Channel) return
      const ch = new Channel(channelName)
      ch.postMessage({ writer: id })
      ch.close()
    },
    onAnnounce(fn) {
      if (!Channel) return () => {}
      const ch = new Channel(channelName)
      ch.onmessage = (e: MessageEvent) => {
        const id = (e.data as { writer?: unknown } | null)?.writer
        if (typeof id === 'string') fn(id)
      }
      return () => ch.close()
    },
  }
}

const sharedRegistries = new Map<string, WriterLocks>()

/** One in-process registry per name (e.g. an IndexedDB database name where Web Locks are missing). */
export function namedProcessLocks(name: string): WriterLocks {
  let l = sharedRegistries.get(name)
  if (!l) sharedRegistries.set(name, (l = processLocks()))
  return l
}
