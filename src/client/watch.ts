/**
 * TaskWatch: the tasks of one project (or of the whole organization) as they
 * enter and leave it. The socket subscription by scope tells the client about
 * tasks it has not opened (their ops, or a snapshot when one is moved in); the
 * REST listing finds those already there, at the start and after every
 * reconnect. Membership is decided on each handle's own snapshot (local
 * changes included), so every way a task can change project or die — a live
 * op, a replay, a snapshot, a catch-up from the log, a local edit — is seen.
 */
import type { TaskSnapshot } from '../domain/types.js'
import type { ClientMessage } from '../protocol/messages.js'
import { Emitter } from './emitter.js'
import type { TaskHandle } from './task.js'

/** What a watch follows: one project, or every task of the organization. */
export type WatchScope = { projectId: string } | { all: true }

export interface TaskWatchEvents {
  /** A task entered the scope (already there at the start, created in it, moved into it): an open, loaded handle. */
  task: TaskHandle
  /** The id of a task that left the scope (moved to another project, or deleted); its handle stays open. */
  leave: string
  /** The scope could not be subscribed (unknown project: the watch then stops asking) or listed; the watch keeps whatever it has. */
  error: Error
}

/** What a watch needs from its client. */
export interface WatchHost {
  /** Number of the current ready connection; 0 when there is none. */
  readonly epoch: number
  send(msg: ClientMessage): boolean
  /** One page of the scope's live tasks over REST. */
  listPage(projectId: string | null, cursor: string | null): Promise<{ items: TaskSnapshot[]; nextCursor: string | null }>
  /** Opens the listed tasks that are not open yet, from their snapshots. */
  adopt(snapshots: TaskSnapshot[]): void
  /** Runs `fn` after a backoff delay for `attempt`; false once attempts are used up. */
  retryLater(attempt: number, fn: () => void): boolean
  /** The watch was closed: unsubscribe its scope unless another watch still needs it. */
  closed(watch: TaskWatch): void
}

export class TaskWatch extends Emitter<TaskWatchEvents> {
  /** The watched project, or null for the whole organization. */
  readonly projectId: string | null
  /** Every open handle of the client, with the listener that re-checks its membership. */
  private readonly followed = new Map<string, { handle: TaskHandle; off: () => void }>()
  private readonly inScope = new Map<string, TaskHandle>()
  private started = false
  private stopped = false
  /** The server refused the scope: it is not asked again (watch anew once the project exists). */
  private refusedScope = false
  /** Bumped by each listing: an older one still running stops adopting. */
  private listing = 0

  constructor(
    scope: WatchScope,
    private readonly host: WatchHost,
  ) {
    super()
    this.projectId = 'projectId' in scope ? scope.projectId : null
  }

  /** The handles currently in the scope. */
  get tasks(): TaskHandle[] {
    return [...this.inScope.values()]
  }

  /** True once `close()` was called. */
  get isClosed(): boolean {
    return this.stopped
  }

  /** Unsubscribes the scope and stops emitting; the handles stay open (release them with `client.release`). */
  close(): void {
    if (this.stopped) return
    this.stopped = true
    this.listing++
    for (const { off } of this.followed.values()) off()
    this.followed.clear()
    this.inScope.clear()
    this.host.closed(this)
  }

  // ---- driven by the client ---------------------------------------------

  /** @internal Same scope as another watch (the server keeps one subscription per scope and socket). */
  get scopeKey(): string {
    return this.projectId ?? '*'
  }

  /** @internal The subscribe and unsubscribe messages of the scope. */
  scopeMessage(type: 'subscribe' | 'unsubscribe'): ClientMessage {
    return this.projectId ? { type, projectIds: [this.projectId] } : { type, all: true }
  }

  /** @internal Starts after the caller had a chance to add listeners: checks the open tasks, subscribes. */
  start(open: Iterable<TaskHandle>): void {
    if (this.stopped) return
    this.started = true
    for (const h of open) this.track(h)
    this.subscribe()
  }

  /** @internal On every ready connection: (re)subscribe the scope; its `subscribed` starts a listing. */
  subscribe(): void {
    if (this.started && !this.stopped && !this.refusedScope && this.host.epoch) this.host.send(this.scopeMessage('subscribe'))
  }

  /** @internal A `subscribed` reply: when it names this scope, list the tasks already in it. */
  onSubscribed(projectIds: string[], all: boolean): void {
    if (this.stopped || !(this.projectId ? projectIds.includes(this.projectId) : all)) return
    void this.list(++this.listing, 0)
  }

  /** @internal The server refused the scope (e.g. `not_found` for an unknown project): reported once, not asked again. */
  refused(error: Error): void {
    if (this.stopped || this.refusedScope) return
    this.refusedScope = true
    this.emit('error', error)
  }

  /** @internal A handle the client opened (or had open): follow its snapshot. */
  track(h: TaskHandle): void {
    if (this.stopped || !this.started) return
    const known = this.followed.get(h.id)
    if (known?.handle === h) return
    if (known) this.untrack(h.id)
    this.followed.set(h.id, { handle: h, off: h.on('change', () => this.check(h)) })
    this.check(h)
  }

  /** @internal The app released the task: forget the handle without a `leave` (a later arrival opens it again). */
  untrack(id: string): void {
    this.followed.get(id)?.off()
    this.followed.delete(id)
    this.inScope.delete(id)
  }

  // ---- membership -------------------------------------------------------

  private covers(h: TaskHandle): boolean {
    if (!h.open || !h.loaded || h.missing || h.deleted) return false
    return this.projectId === null || h.snapshot.projectId === this.projectId
  }

  private check(h: TaskHandle): void {
    if (this.stopped) return
    const inside = this.covers(h)
    const was = this.inScope.get(h.id) === h
    if (inside && !was) {
      this.inScope.set(h.id, h)
      this.emit('task', h)
    } else if (!inside && was) {
      this.inScope.delete(h.id)
      this.emit('leave', h.id)
    }
  }

  /** Lists every page of the scope; tasks found are opened and come back through `track`. */
  private async list(generation: number, attempt: number): Promise<void> {
    let cursor: string | null = null
    try {
      do {
        const page: { items: TaskSnapshot[]; nextCursor: string | null } = await this.host.listPage(this.projectId, cursor)
        if (this.stopped || generation !== this.listing) return
        this.host.adopt(page.items)
        cursor = page.nextCursor
      } while (cursor)
    } catch (err) {
      if (this.stopped || generation !== this.listing) return
      // The next reconnect lists again anyway; until then, retry with backoff.
      const retry = () => {
        if (generation === this.listing) void this.list(generation, attempt + 1)
      }
      if (!this.host.retryLater(attempt + 1, retry)) this.emit('error', err as Error)
    }
  }
}
