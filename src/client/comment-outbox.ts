/**
 * The queue of comment mutations: recorded with their seq before they are sent,
 * sent one at a time in order (a create before its edits), retried on transient
 * errors, rolled back on the task when refused.
 */
import type { ErrorCode } from '../protocol/errors.js'
import type { ClientMessage } from '../protocol/messages.js'
import type { CommentMutation } from './types.js'

export interface OutboxHost {
  /** Number of the ready connection; 0 when there is none. */
  epoch(): number
  send(msg: ClientMessage): boolean
  /** The task's confirmed rev (0 while its creation is unacknowledged), undefined when not open. */
  taskRev(taskId: string): number | undefined
  persist(): Promise<void>
  retryLater(attempt: number, fn: () => void): boolean
  /** A seq far past the counter (after `already_exists`: another writer used the next ones). */
  freshSeq(): number
  nextSeq(): number
  rejected(m: CommentMutation, code: ErrorCode, message: string): void
  changed(): void
}

const isTransient = (code: ErrorCode) => code === 'unavailable' || code === 'internal' || code === 'rate_limited'

export class CommentOutbox {
  private items: CommentMutation[] = []
  private sentEpoch = 0
  private durableSeq = 0
  /** While a REST push carries the queue, nothing goes on the socket (the server must not see one seq twice at once). */
  paused = false

  constructor(private readonly host: OutboxHost) {}

  /** Mutations not yet acknowledged. */
  get size(): number {
    return this.items.length
  }

  /** The mutation sent on the current connection and not answered yet. */
  get sentHead(): CommentMutation | undefined {
    const epoch = this.host.epoch()
    return epoch !== 0 && this.sentEpoch === epoch ? this.items[0] : undefined
  }

  /** True when a change of this comment is still queued (local state then stays on top). */
  has(commentId: string): boolean {
    return this.items.some((m) => m.commentId === commentId)
  }

  /** Mutations already recorded, for a REST push; none while the head is in flight on the socket (order matters). */
  pushable(): CommentMutation[] {
    if (this.sentHead) return []
    return this.items.filter((m) => m.seq <= this.durableSeq)
  }

  /** Takes back the queue storage kept (all of it was recorded). */
  restore(items: CommentMutation[]): void {
    this.items = items
    this.durableSeq = Math.max(0, ...items.map((m) => m.seq))
  }

  /** What storage keeps (null when empty). */
  toStored(): CommentMutation[] | null {
    return this.items.length > 0 ? this.items.map((m) => ({ ...m })) : null
  }

  /** Queues a mutation; it is sent once the write recording it completes. */
  add(m: CommentMutation): void {
    this.items.push(m)
    void this.host.persist().then(() => {
      this.durableSeq = Math.max(this.durableSeq, m.seq)
      this.flush()
    })
  }

  /** Sends the head if it is recorded, not yet sent on this connection, and its task exists on the server. */
  flush(): void {
    const head = this.items[0]
    const epoch = this.host.epoch()
    if (!head || !epoch || this.paused || this.sentEpoch === epoch || head.seq > this.durableSeq) return
    if (this.host.taskRev(head.taskId) === 0) return
    const msg: ClientMessage = { type: 'comment', action: head.action, commentId: head.commentId, taskId: head.taskId, seq: head.seq }
    if (head.body !== undefined) msg.body = head.body
    if (head.parentId !== undefined) msg.parentId = head.parentId
    if (this.host.send(msg)) this.sentEpoch = epoch
  }

  /** The head was acknowledged (over the socket or a push); false when `seq` is not the head. */
  acked(seq: number): boolean {
    if (this.items[0]?.seq !== seq) return false
    this.items.shift()
    this.sentEpoch = 0
    void this.host.persist()
    this.flush()
    this.host.changed()
    return true
  }

  /** The head was refused: transient codes are retried a few times, the rest rolled back. */
  failed(code: ErrorCode, message: string): void {
    const head = this.items[0]
    if (!head) return
    this.sentEpoch = 0
    if (code === 'already_exists') {
      const n = head.reissues ?? 0
      // Given a fresh seq already, a create still "exists": its comment id is taken, by an earlier attempt of it (ids are fresh UUIDs).
      if (head.action === 'create' && n > 0) {
        this.acked(head.seq)
        return
      }
      if (n < 5) {
        // Another writer used this seq: the queue goes again under fresh seqs, still in order.
        head.reissues = n + 1
        this.items.forEach((m, i) => (m.seq = i === 0 ? this.host.freshSeq() : this.host.nextSeq()))
        void this.host.persist().then(() => {
          this.durableSeq = Math.max(this.durableSeq, ...this.items.map((m) => m.seq))
          this.flush()
        })
        return
      }
    }
    if (isTransient(code) && this.host.retryLater((head.retries ?? 0) + 1, () => this.flush())) {
      head.retries = (head.retries ?? 0) + 1
      return
    }
    this.items.shift()
    void this.host.persist()
    this.host.rejected(head, code, message)
    this.flush()
    this.host.changed()
  }
}
