/**
 * What the chaos clients share: the tasks that exist (created at setup or by a
 * client whose create was acked) and which are deleted, the history, and the
 * interface every client kind implements.
 */
import { contentHash } from '../load/canonical.js'
import type { TaskContent } from '../src/domain/types.js'
import type { History } from './history.js'
import type { FaultProxy } from './fault-proxy.js'

/** Live tasks the clients keep: creates are drawn below the upper bound, deletes above the lower. */
export const LIVE_TASKS = { min: 3, max: 6 }

export class World {
  readonly tasks = new Map<string, { deleted: boolean }>()
  private readonly openers = new Set<(taskId: string) => void>()

  constructor(readonly history: History) {}

  /** A task exists from now on: every client opens it. */
  created(taskId: string): void {
    if (this.tasks.has(taskId)) return
    this.tasks.set(taskId, { deleted: false })
    for (const open of this.openers) open(taskId)
  }

  deleted(taskId: string): void {
    const t = this.tasks.get(taskId)
    if (t) t.deleted = true
  }

  onCreated(open: (taskId: string) => void): () => void {
    this.openers.add(open)
    return () => this.openers.delete(open)
  }

  get live(): number {
    let n = 0
    for (const t of this.tasks.values()) if (!t.deleted) n++
    return n
  }

  mayCreate(): boolean {
    return this.live < LIVE_TASKS.max
  }

  mayDelete(): boolean {
    return this.live > LIVE_TASKS.min
  }
}

/** One simulated client (or app install) of a chaos run. */
export interface ChaosClient {
  readonly name: string
  /** Its own network: a fault proxy (and load balancer) in front of every instance. */
  readonly proxy: FaultProxy
  /** Connects and starts its random mutations. */
  start(): Promise<void>
  /** Stops making new mutations (what is queued is still delivered). */
  stopWriting(): void
  /** True while a mutation of this client is not yet answered for good. */
  busy(): boolean
  /** The rev this client has of each task it follows (for the quiet period). */
  revs(): Map<string, number>
  /** Records the final state of every task it holds (`state` events with `final`). */
  recordFinal(): void
  close(): Promise<void>
}

/** The content hash the checker compares (metadata left out). */
export function hashOf(content: TaskContent | Record<string, unknown>): string {
  return contentHash(content as Record<string, unknown>)
}

/** Error codes after which nothing was committed (the server's word); the rest leave the outcome open. */
export const DEFINITE = new Set(['invalid_op', 'task_deleted', 'not_found', 'forbidden', 'bad_request', 'rev_too_old', 'already_exists', 'too_large'])
