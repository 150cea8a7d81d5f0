/**
 * Hot tasks: the latest snapshot of recently written tasks and their last ops,
 * kept in memory so a commit neither rereads the task nor the ops it must be
 * transformed against. The cache may be behind the database when another
 * instance committed meanwhile: the commit's version check then fails, and the
 * sequencer reloads (the cache is a hint, the database the truth).
 */
import { TaskSyncError } from '../protocol/errors.js'
import type { TaskContent, TaskOp, TaskSnapshot } from '../domain/types.js'
import { contentOf } from '../domain/snapshot.js'
import type { LockedTask, TaskStore } from '../storage/task-store.js'
import { Lru } from './lru.js'

/** Ops kept per hot task: enough for clients a few revs behind, without a read. */
const RECENT_OPS = 32
/**
 * A task written faster keeps the ops of its last RECENT_MS, up to MAX_RECENT_OPS: its
 * writers are as many revs behind as there are writers (50 on one task: about 49), and
 * reading those ops for every commit cost more than the commit (hot scenario). Memory
 * beyond RECENT_OPS per task is bounded by the commit rate, not by the cached tasks.
 */
const RECENT_MS = 5_000
const MAX_RECENT_OPS = 512

/** A committed op kept in memory; `ms` is performance.now() when this instance committed it (absent: read from the log). */
export interface RecentOp {
  rev: number
  op: TaskOp
  ms?: number
}

/** Drops the oldest ops beyond what a hot task keeps. */
function trim(recent: RecentOp[]): void {
  if (recent.length <= RECENT_OPS) return
  const old = performance.now() - RECENT_MS
  let drop = Math.max(0, recent.length - MAX_RECENT_OPS)
  while (recent.length - drop > RECENT_OPS && !(recent[drop].ms! > old)) drop++
  if (drop > 0) recent.splice(0, drop)
}

export interface HotTask {
  snapshot: TaskSnapshot
  /** The snapshot's content (what the next op applies to), kept so a commit need not split it again. */
  content: TaskContent
  /** The last committed ops, oldest first, ending at snapshot.rev (possibly empty). */
  recent: RecentOp[]
}

export class HotTasks {
  private readonly lru: Lru<HotTask>

  constructor(
    private readonly store: TaskStore,
    size: number,
  ) {
    this.lru = new Lru(size)
  }

  /** The task from memory when it is held at rev ≥ minRev (no await for the common case); undefined otherwise. */
  cached(orgId: string, taskId: string, minRev: number): HotTask | undefined {
    const cached = this.lru.get(`${orgId}:${taskId}`)
    return cached && cached.snapshot.rev >= minRev ? cached : undefined
  }

  /**
   * The task at rev ≥ minRev if it exists: from memory when the cached rev is at
   * least minRev, else from the database. Throws not_found for a missing task.
   */
  async get(orgId: string, taskId: string, minRev: number): Promise<HotTask> {
    const key = `${orgId}:${taskId}`
    const cached = this.lru.get(key)
    if (cached && cached.snapshot.rev >= minRev) return cached
    const snapshot = await this.store.loadTask(orgId, taskId)
    if (!snapshot) {
      this.lru.delete(key)
      throw new TaskSyncError('not_found', `task ${taskId} not found`)
    }
    const hot: HotTask = { snapshot, content: contentOf(snapshot), recent: [] }
    this.lru.set(key, hot)
    return hot
  }

  /**
   * The task after a commit prepared on `prev` and not written yet (a chain's next
   * link): `prev` is left as it is, its recent ops copied.
   */
  static after(prev: HotTask, snapshot: TaskSnapshot, content: TaskContent, op: TaskOp): HotTask {
    // Not trimmed here: a later op of the chain may be based on any rev the chain started with.
    const recent = [...prev.recent, { rev: snapshot.rev, op, ms: performance.now() }]
    return { snapshot, content, recent }
  }

  /**
   * The task with every committed op after `baseRev` held in memory (read from the log
   * when not held), for a chain whose ops are based on older revs than the cache keeps.
   * The task as it is when the log no longer holds them.
   */
  async widened(orgId: string, taskId: string, hot: HotTask, baseRev: number): Promise<HotTask> {
    if (holdsOpsAfter(hot, baseRev)) return hot
    try {
      return { ...hot, recent: await this.opsAfter(orgId, taskId, hot, baseRev) }
    } catch {
      return hot
    }
  }

  /** Records a commit made by this instance. */
  committed(orgId: string, taskId: string, snapshot: TaskSnapshot, content: TaskContent, op: TaskOp, prev: HotTask | null): void {
    const recent = prev && prev.snapshot.rev === snapshot.rev - 1 ? prev.recent : []
    recent.push({ rev: snapshot.rev, op, ms: performance.now() })
    trim(recent)
    this.lru.set(`${orgId}:${taskId}`, { snapshot, content, recent })
  }

  /** Records a commit of this instance prepared by `after`. */
  put(orgId: string, taskId: string, hot: HotTask): void {
    trim(hot.recent)
    this.lru.set(`${orgId}:${taskId}`, hot)
  }

  forget(orgId: string, taskId: string): void {
    this.lru.delete(`${orgId}:${taskId}`)
  }

  /**
   * The committed ops with rev in (baseRev, hot.snapshot.rev], oldest first: from
   * memory when held, else from the op log (under the lock, when the task is locked).
   * rev_too_old when the log no longer holds them.
   */
  async opsAfter(orgId: string, taskId: string, hot: HotTask, baseRev: number, locked?: LockedTask): Promise<{ rev: number; op: TaskOp }[]> {
    const needed = hot.snapshot.rev - baseRev
    if (needed <= 0) return []
    const first = hot.recent[0]
    if (first && first.rev <= baseRev + 1) return hot.recent.slice(baseRev + 1 - first.rev)
    const ops = locked ? await locked.loadOps(baseRev + 1, needed) : await this.store.loadOps(orgId, taskId, baseRev + 1, needed)
    if (ops.length < needed || ops[0].rev !== baseRev + 1) {
      throw new TaskSyncError('rev_too_old', `rev ${baseRev} is older than the op log of task ${taskId} holds: rebase on a fresh snapshot`)
    }
    return ops
  }
}

/** Whether the ops with rev in (baseRev, hot's rev] are all held in memory (or there are none). */
export function holdsOpsAfter(hot: HotTask, baseRev: number): boolean {
  if (hot.snapshot.rev <= baseRev) return true
  const first = hot.recent[0]
  return first !== undefined && first.rev <= baseRev + 1
}
