/**
 * Locks for a file storage that several Node processes may open: a writer's
 * lock is a lease file `<path>.writers/<clientId>.lock` naming the process that
 * holds it, kept fresh (mtime) while it lives. A lease whose process is gone
 * (same host, no such pid) or that was not renewed for `staleMs` is free.
 * Within one process the locks are in memory first (two clients of one file).
 *
 * Also the short mutex around each read-modify-write of the file (`<path>.lock`).
 */
import { mkdir, open, readdir, readFile, rename, stat, unlink, utimes } from 'node:fs/promises'
import { hostname } from 'node:os'
import { basename, dirname, join, resolve } from 'node:path'
import { processLocks, type WriterLease, type WriterLocks } from './writer-locks.js'

/** A lease not renewed for this long is taken as abandoned (renewed every third of it). */
const STALE_MS = 15_000
/** How often a waiting process looks at a lease it waits for, and at new writers. */
const POLL_MS = 500

interface Owner {
  pid: number
  host: string
  token: string
}

const me = (): Owner => ({ pid: process.pid, host: hostname(), token: Math.random().toString(36).slice(2) })

function alive(o: Owner): boolean {
  if (o.host !== hostname()) return true
  try {
    process.kill(o.pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** Creates `file` naming this process; false when a live owner has it. A stale one is moved aside first. */
async function takeFile(file: string, owner: Owner, staleMs: number): Promise<boolean> {
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fh = await open(file, 'wx')
      try {
        await fh.writeFile(JSON.stringify(owner))
      } finally {
        await fh.close()
      }
      return true
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    }
    let held: Owner | null = null
    let mtime = Date.now()
    try {
      held = JSON.parse(await readFile(file, 'utf8')) as Owner
      mtime = (await stat(file)).mtimeMs
    } catch {
      // Being written or removed right now: look again.
      continue
    }
    if (alive(held) && Date.now() - mtime < staleMs) return false
    // Abandoned: rename it aside (only one taker wins the rename), then try to create it again.
    await rename(file, `${file}.${owner.token}.stale`).then(
      () => unlink(`${file}.${owner.token}.stale`).catch(() => {}),
      () => {},
    )
  }
  return false
}

const inProcess = new Map<string, ReturnType<typeof processLocks>>()
const mutexChains = new Map<string, Promise<unknown>>()

/** Writer locks of the file storage at `path`. */
export function fileLocks(path: string, staleMs = STALE_MS): WriterLocks {
  const abs = resolve(path)
  let local = inProcess.get(abs)
  if (!local) inProcess.set(abs, (local = processLocks()))
  const mem = local
  const dir = `${abs}.writers`
  const fileOf = (id: string) => join(dir, `${id}.lock`)
  const owner = me()

  const leaseFile = async (id: string): Promise<boolean> => {
    await mkdir(dir, { recursive: true })
    return takeFile(fileOf(id), owner, staleMs)
  }
  const hold = (id: string, inner: WriterLease): WriterLease => {
    const timer = setInterval(() => {
      const now = new Date()
      utimes(fileOf(id), now, now).catch(() => {})
    }, Math.max(100, staleMs / 3))
    timer.unref?.()
    return {
      async release() {
        clearInterval(timer)
        await unlink(fileOf(id)).catch(() => {})
        await inner.release()
      },
    }
  }
  return {
    async tryAcquire(id) {
      const inner = await mem.tryAcquire(id)
      if (!inner) return null
      if (await leaseFile(id).catch(() => false)) return hold(id, inner)
      await inner.release()
      return null
    },
    async acquire(id, signal) {
      const inner = await mem.acquire(id, signal)
      for (;;) {
        if (await leaseFile(id).catch(() => false)) return hold(id, inner)
        if (signal.aborted) {
          await inner.release()
          throw Object.assign(new Error('aborted'), { name: 'AbortError' })
        }
        await new Promise((r) => setTimeout(r, POLL_MS))
      }
    },
    announce(id) {
      // Other processes notice the lease file appear.
      mem.announce(id)
    },
    onAnnounce(fn) {
      const offLocal = mem.onAnnounce(fn)
      const seen = new Set<string>()
      let stopped = false
      const look = async () => {
        const names = await readdir(dir).catch(() => [] as string[])
        for (const name of names) {
          if (!name.endsWith('.lock')) continue
          const id = name.slice(0, -5)
          if (!seen.has(id)) {
            seen.add(id)
            fn(id)
          }
        }
      }
      const timer = setInterval(() => void (stopped || look()), POLL_MS * 4)
      timer.unref?.()
      return () => {
        stopped = true
        clearInterval(timer)
        offLocal()
      }
    },
  }
}

/**
 * Runs `fn` holding the mutex of the file at `path`: one read-modify-write at
 * a time, across clients of this process (a chain) and across processes (a
 * lock file; one left by a killed process is stale after a few seconds).
 */
export async function withFileMutex<T>(path: string, fn: () => Promise<T>): Promise<T> {
  const abs = resolve(path)
  const prev = mutexChains.get(abs) ?? Promise.resolve()
  const run = prev.catch(() => {}).then(async () => {
    const lock = join(dirname(abs), `${basename(abs)}.lock`)
    const owner = me()
    for (let wait = 5; !(await takeFile(lock, owner, 5_000)); wait = Math.min(100, wait * 2)) await new Promise((r) => setTimeout(r, wait))
    try {
      return await fn()
    } finally {
      await unlink(lock).catch(() => {})
    }
  })
  mutexChains.set(abs, run)
  try {
    return await run
  } finally {
    if (mutexChains.get(abs) === run) mutexChains.delete(abs)
  }
}
