/**
 * Outbound side of a socket: messages queued in one tick are written together
 * (one corked write pass per socket per tick), straight to the TCP stream as the
 * complete frames `encode` built (one Buffer shared by every socket a broadcast
 * goes to: nothing is framed or allocated per socket). ws stays coherent: with
 * compression off its sender never queues, so its own frames (ping, close) and
 * these leave in the order they were written, and its `bufferedAmount` reads the
 * stream's buffer, which these writes fill. A socket whose data not yet
 * taken by the kernel passes the limit is cut: nothing more is queued, a 4009 close goes out behind
 * what is already queued (ws destroys the connection if the close handshake has
 * not finished within its closeTimeout, 30 s).
 */
import { CloseCode } from '../protocol/close-codes.js'
import { payloadOf } from './wire.js'

/** The subset of a ws WebSocket the outbox writes to. */
export interface OutboundSocket {
  readonly readyState: number
  /** Bytes accepted and not yet written to the kernel (ws: socket buffer + sender queue). */
  readonly bufferedAmount: number
  send(data: Buffer, options: { binary: boolean }): void
  close(code: number, reason: string): void
}

/** The underlying TCP stream: written to directly, corked around a write pass so the frames leave in one writev. */
export interface Corkable {
  cork(): void
  uncork(): void
  write(frame: Buffer): boolean
}

const OPEN = 0
const CLOSING = 1
const CLOSED = 2
const WS_OPEN = 1

export class Outbox {
  /**
   * This tick's frames: the first in a field of its own (a socket usually gets one
   * message per tick: one op of its task per group commit), the rest in an array
   * made only when a second one comes. Nothing is allocated per message.
   */
  private first: Buffer | null = null
  private rest: Buffer[] | null = null
  private queuedBytes = 0
  private state = OPEN
  private closeCode = 0
  private closeReason = ''
  /** Set while the outbox waits in the flusher's list. */
  scheduled = false

  constructor(
    readonly socket: OutboundSocket,
    private readonly flusher: Flusher,
    private readonly stream?: Corkable,
  ) {}

  /** Bytes not yet written to the kernel: ws's buffer plus this tick's queue. */
  get unsentBytes(): number {
    return this.socket.bufferedAmount + this.queuedBytes
  }

  /** True once a close has been queued (cut, or closed by the session). */
  get closing(): boolean {
    return this.state !== OPEN
  }

  /**
   * Queues one message (a complete text frame from `encode`). Returns false when nothing was
   * queued: the socket is closing, or its backlog has passed the limit (then it is cut).
   */
  send(frame: Buffer): boolean {
    if (this.state !== OPEN || this.socket.readyState !== WS_OPEN) return false
    if (this.overLimit()) return false
    if (this.first === null) this.first = frame
    else (this.rest ??= []).push(frame)
    this.queuedBytes += frame.length
    this.flusher.schedule(this)
    return true
  }

  /**
   * True (and the socket is cut) when what the kernel has not taken yet passes
   * the limit. Checked before queuing and after each write pass; this tick's own
   * queue is not counted, so one large message (a snapshot) is never a cut by itself.
   */
  private overLimit(): boolean {
    if (this.socket.bufferedAmount <= this.flusher.limitBytes) return false
    this.flusher.onCut?.(this)
    this.close(CloseCode.TOO_SLOW, 'too slow to keep up: reconnect and resume')
    return true
  }

  /** Closes after everything already queued has been handed to the socket. */
  close(code: number, reason: string): void {
    if (this.state !== OPEN) return
    this.state = CLOSING
    this.closeCode = code
    this.closeReason = reason
    this.flusher.schedule(this)
  }

  /**
   * Writes the queue (called by the flusher once per tick). One frame is one write
   * (corking it would only add the stream's bookkeeping); several leave corked, in one writev.
   */
  flush(): void {
    const first = this.first
    const rest = this.rest
    this.first = null
    this.rest = null
    this.queuedBytes = 0
    if (first !== null && this.socket.readyState === WS_OPEN) {
      const stream = this.stream
      if (stream && rest === null) stream.write(first)
      else if (stream) {
        stream.cork()
        stream.write(first)
        for (const frame of rest!) stream.write(frame)
        stream.uncork()
      } else {
        this.socket.send(payloadOf(first), { binary: false })
        if (rest) for (const frame of rest) this.socket.send(payloadOf(frame), { binary: false })
      }
      if (this.state === OPEN) this.overLimit()
    }
    if (this.state === CLOSING) {
      this.state = CLOSED
      this.socket.close(this.closeCode, this.closeReason)
    }
  }
}

/**
 * Runs every scheduled outbox once per tick (setImmediate), after the current I/O phase,
 * in slices of at most `sliceMs`: what is left goes on in the next turn of the event
 * loop. Node takes one new connection from the listen queue per turn, so a pass writing
 * to thousands of sockets at once kept a busy instance at a few turns a second, and a
 * reconnect storm waited in the listen queue for tens of seconds.
 */
export class Flusher {
  /** This tick's outboxes; two lists swapped per pass (a flush may schedule its outbox again: its close). */
  private list: Outbox[] = []
  private spare: Outbox[] = []
  private pending = false

  constructor(
    /** Unsent bytes past which a socket is cut (WS_MAX_BUFFERED_BYTES). */
    readonly limitBytes: number,
    /** Called once when an outbox is cut for being too slow (metrics, logs). */
    readonly onCut?: (outbox: Outbox) => void,
    /** Longest write pass in one turn (ms); the clock is read every 32 outboxes. */
    readonly sliceMs = 5,
  ) {}

  schedule(outbox: Outbox): void {
    if (outbox.scheduled) return
    outbox.scheduled = true
    this.list.push(outbox)
    this.wake()
  }

  private wake(): void {
    if (!this.pending) {
      this.pending = true
      setImmediate(this.slice)
    }
  }

  /** One slice of at most `sliceMs`: outboxes not reached in time go on in the next turn. */
  private readonly slice = (): void => {
    this.pending = false
    if (this.pass(performance.now() + this.sliceMs)) this.wake()
  }

  /** Writes everything queued now, in one go (shutdown, before the 1012 closes). */
  readonly run = (): void => {
    while (this.list.length) this.pass(Infinity)
  }

  /**
   * Flushes this tick's outboxes until the clock passes `until`. The ones not reached stay
   * scheduled, first in line (in order, before any scheduled since); true when there are some.
   */
  private pass(until: number): boolean {
    const list = this.list
    this.list = this.spare
    let i = 0
    for (; i < list.length; i++) {
      if ((i & 31) === 31 && performance.now() > until) break
      const outbox = list[i]
      outbox.scheduled = false
      outbox.flush()
    }
    const left = i < list.length
    if (left) {
      const rest = list.slice(i)
      for (const o of this.list) rest.push(o)
      this.list = rest
    }
    // Emptied, not replaced: the next pass reuses it.
    list.length = 0
    this.spare = list
    return left
  }
}
