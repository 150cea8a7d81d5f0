/**
 * An exclusive lock on an embedded data folder (DATA_DIR): two processes opening
 * one PGlite store each see only their own writes and lose one another's on
 * restart, so a second server or seed refuses to start instead.
 *
 * The lock is the file DATA_DIR/tasksync.lock, created atomically (written beside
 * it, then hard-linked into place: a link never replaces an existing file, and
 * the lock is never seen half written) and naming its holder: pid, host, boot id
 * and the process's start time. A lock whose holder is gone (kill -9, a crash, a
 * reboot, or a reused pid that names another process now) is stale and taken
 * over; a holder on another host cannot be checked from here and counts as live.
 */
import { closeSync, fsyncSync, linkSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { randomUUID } from 'node:crypto'

/** Who holds a lock, as written in its file. */
export interface LockHolder {
  pid: number
  host: string
  /** /proc/sys/kernel/random/boot_id where there is one: pids restart at each boot. */
  bootId: string | null
  /** The holder's start time (clock ticks since boot, from /proc), telling a reused pid apart. */
  startTicks: string | null
  command: string
  since: string
}

/** The folder is held by another process: a one-line message naming both. */
export class DataDirLockedError extends Error {
  constructor(
    readonly dir: string,
    readonly holder: LockHolder | null,
    why?: string,
  ) {
    const who = holder
      ? `process ${holder.pid}${holder.host !== hostname() ? ` on host ${holder.host}` : ''} (${holder.command || 'unknown command'}, since ${holder.since})`
      : 'another process'
    super(why ?? `DATA_DIR ${dir} is in use by ${who}; stop it or use another DATA_DIR (its lock file: ${join(dir, LOCK_FILE)})`)
    this.name = 'DataDirLockedError'
  }
}

export interface DataDirLock {
  readonly path: string
  /** Removes the lock file if it is still this lock's. Idempotent. */
  release(): void
}

export const LOCK_FILE = 'tasksync.lock'

/** Folders this process holds: a second open in the same process is refused too. */
const held = new Set<string>()

/** Takes the lock on `dir` (which must exist), or throws DataDirLockedError. */
export function lockDataDir(dir: string): DataDirLock {
  const path = join(dir, LOCK_FILE)
  if (held.has(path)) throw new DataDirLockedError(dir, self(), `DATA_DIR ${dir} is already open in this process (pid ${process.pid})`)
  const mine = JSON.stringify(self())
  for (let attempt = 0; attempt < 5; attempt++) {
    if (create(path, mine)) {
      held.add(path)
      return { path, release: () => release(path, mine) }
    }
    const text = readText(path)
    if (text === null) continue // removed meanwhile: try again
    const holder = parse(text)
    if (holder && alive(holder)) throw new DataDirLockedError(dir, holder)
    takeOver(path, text)
  }
  throw new DataDirLockedError(dir, parse(readText(path) ?? ''), `DATA_DIR ${dir}: could not take its lock ${path} (other processes keep racing for it)`)
}

/** Creates the lock file with its content in one step; false when one exists. */
function create(path: string, content: string): boolean {
  const tmp = `${path}.${process.pid}.${randomUUID()}`
  const fd = openSync(tmp, 'wx', 0o644)
  try {
    writeSync(fd, content)
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
  try {
    linkSync(tmp, path)
    return true
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false
    throw err
  } finally {
    unlinkSync(tmp)
  }
}

/**
 * Moves a stale lock aside. Should another process have replaced it with its own
 * live lock in between (it judged the same stale lock), that one is put back.
 */
function takeOver(path: string, stale: string): void {
  const aside = `${path}.stale.${process.pid}.${randomUUID()}`
  try {
    renameSync(path, aside)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return
    throw err
  }
  try {
    if (readText(aside) !== stale) linkSync(aside, path)
  } catch {
    // Yet another process holds it now: the next attempt reads who.
  } finally {
    unlinkSync(aside)
  }
}

function release(path: string, mine: string): void {
  if (!held.delete(path)) return
  try {
    if (readText(path) === mine) unlinkSync(path)
  } catch {
    // Gone already: nothing to release.
  }
}

function self(): LockHolder {
  return {
    pid: process.pid,
    host: hostname(),
    bootId: bootId(),
    startTicks: startTicks(process.pid),
    command: [process.argv0, ...process.argv.slice(1)].map((a) => a.split('/').slice(-2).join('/')).join(' ').slice(0, 200),
    since: new Date().toISOString(),
  }
}

function alive(h: LockHolder): boolean {
  if (h.host !== hostname()) return true
  if (h.bootId && bootId() && h.bootId !== bootId()) return false
  // This process is not holding it (checked above): a lock naming our pid was left by an earlier process.
  if (h.pid === process.pid) return false
  try {
    process.kill(h.pid, 0)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false
  }
  // The pid is in use; by the holder only if it started when the holder did.
  const ticks = startTicks(h.pid)
  return !(h.startTicks && ticks && ticks !== h.startTicks)
}

function parse(text: string): LockHolder | null {
  try {
    const h = JSON.parse(text) as LockHolder
    return Number.isSafeInteger(h.pid) && typeof h.host === 'string' ? h : null
  } catch {
    return null
  }
}

function readText(path: string): string | null {
  try {
    return readFileSync(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw err
  }
}

function bootId(): string | null {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()
  } catch {
    return null
  }
}

/** Field 22 of /proc/<pid>/stat (after the command name, which may hold spaces and parentheses). */
function startTicks(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null
  } catch {
    return null
  }
}
