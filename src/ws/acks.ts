/**
 * The acks one socket owes: every mutation it sent that has not been answered,
 * and the one decision of when its ack goes out. A client must never see an op
 * of a later rev before the ack of its own earlier one, so:
 *
 * - a socket following the task gets its ack from the task's feed, in rev order,
 *   in place of the echo of its own op (or comment);
 * - one whose feed position is still behind the committed rev (or held while a
 *   subscribe is served) has the ack kept until the feed reaches that rev, or
 *   stops following the task (then every kept ack is sent);
 * - any other gets it as soon as the commit answers.
 */
import type { OpEvent, ServerMessage } from '../protocol/messages.js'
import type { CommentNotice } from '../bus/notices.js'
import { HOLD } from './task-feed.js'

export type Ack = Extract<ServerMessage, { type: 'ack' }>

/** A mutation sent and not yet acked: `rev` is set once committed, while the feed still owes the ack. */
export interface Inflight {
  taskId: string
  rev: number
  comment: boolean
}

/** What a commit answered, as far as its ack is concerned. */
export interface Committed {
  rev: number
  /** The mutation committed nothing (an identity op), now or when first sent. */
  noop: boolean
}

export class InflightAcks {
  private readonly pending = new Map<number, Inflight>()

  constructor(private readonly clientId: string) {}

  /** Registers a mutation; null when its seq is already in flight on this socket. */
  begin(seq: number, taskId: string, comment: boolean): Inflight | null {
    if (this.pending.has(seq)) return null
    const entry = { taskId, rev: 0, comment }
    this.pending.set(seq, entry)
    return entry
  }

  /** The mutation was refused: nothing is owed for it. */
  refused(seq: number, entry: Inflight): void {
    if (this.pending.get(seq) === entry) this.pending.delete(seq)
  }

  /**
   * An op commit answered. The ack to send now, or null when the feed sent it
   * already or will send it in order; `positionOf` reads this socket's place in
   * the task's feed (undefined: it does not follow the task), only when the feed
   * has not acked it yet.
   */
  committed(seq: number, entry: Inflight, result: Committed, positionOf: () => number | undefined): Ack | null {
    if (this.pending.get(seq) !== entry) return null
    const position = result.noop ? undefined : positionOf()
    // A commit this socket's stream has not reached yet (a resend that raced its first attempt on
    // another instance included): the feed acks it in the op's place, never ahead of earlier revs.
    if (position !== undefined && (position === HOLD || position < result.rev)) {
      entry.rev = result.rev
      return null
    }
    this.pending.delete(seq)
    // An op that is identity after transform committed nothing (now, or when first sent): the ack says noop.
    return ack(entry.taskId, seq, result.rev, result.noop)
  }

  /** A comment change answered: its ack, unless its fan-out acked it already. */
  commentCommitted(seq: number, entry: Inflight, commentId: string): Ack | null {
    if (this.pending.get(seq) !== entry) return null
    this.pending.delete(seq)
    return { type: 'ack', taskId: entry.taskId, seq, commentId }
  }

  /** An op delivered to this socket: its own op's ack replaces the echo (null: deliver the op). */
  forOp(e: OpEvent): Ack | null {
    if (e.seq === null || e.clientId !== this.clientId) return null
    const entry = this.pending.get(e.seq)
    if (!entry || entry.comment || entry.taskId !== e.taskId) return null
    this.pending.delete(e.seq)
    return ack(e.taskId, e.seq, e.rev, false)
  }

  /** A comment change delivered to this socket: its own change's ack replaces the echo. */
  forComment(n: CommentNotice): Ack | null {
    if (n.seq === null || n.clientId !== this.clientId) return null
    const entry = this.pending.get(n.seq)
    if (!entry?.comment) return null
    this.pending.delete(n.seq)
    return { type: 'ack', taskId: n.taskId, seq: n.seq, commentId: n.comment.id }
  }

  /** The acks kept for the task's committed ops up to `upTo`, removed: the feed will not deliver them now. */
  owed(taskId: string, upTo = Infinity): Ack[] {
    const out: Ack[] = []
    for (const [seq, entry] of this.pending) {
      if (entry.taskId === taskId && !entry.comment && entry.rev > 0 && entry.rev <= upTo) {
        this.pending.delete(seq)
        out.push(ack(taskId, seq, entry.rev, false))
      }
    }
    return out
  }
}

const ack = (taskId: string, seq: number, rev: number, noop: boolean): Ack =>
  noop ? { type: 'ack', taskId, seq, rev, noop } : { type: 'ack', taskId, seq, rev }
