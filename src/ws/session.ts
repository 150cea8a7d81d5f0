/**
 * One WebSocket connection: who it is, what it subscribed to, its rate limit and
 * outbound queue, and the acks it still owes. State is kept small (no timers, no
 * closures per socket; sets and maps are allocated on first use) because idle
 * sockets are the common case. A session parses and limits what arrives; the
 * gateway hands the messages to their handlers.
 */
import { randomUUID } from 'node:crypto'
import type { WebSocket, RawData } from 'ws'
import { CloseCode } from '../protocol/close-codes.js'
import type { ErrorCode } from '../protocol/errors.js'
import type { ClientMessage, ServerMessage } from '../protocol/messages.js'
import type { CommentNotice } from '../bus/notices.js'
import type { Principal } from '../auth/principal.js'
import { parseClientMessage } from './inbound.js'
import { Outbox, type Corkable, type Flusher } from './outbox.js'
import { TokenBucket, type RateSpec } from './token-bucket.js'
import { encode, textFrame } from './wire.js'
import { InflightAcks } from './acks.js'
import type { FeedEntry } from './task-feed.js'
import type { OrgRouter, Subscriber } from './org-router.js'

/** What every session of a gateway shares: the flusher, the rate limits and the message counters. */
export interface SessionShared {
  flusher: Flusher
  rate: RateSpec
  /** Refusals tolerated before a socket that keeps flooding is closed. */
  patience: RateSpec
  /** Messages in and out (read by the metrics collector). */
  stats: { in: number; out: number }
}

export class Session implements Subscriber {
  readonly id = randomUUID()
  readonly connectedAt: number
  lastSeen: number
  /** Which turn of the heartbeat visits this socket (see Gateway.heartbeat). */
  beatSlot = 0
  principal: Principal
  /** Access token expiry (ms); the socket is closed with 1008 when it passes without an `auth`. */
  expiresAt: number
  /** The device key of an identity provider's token (undefined for tasksync's own); in-band `auth` reuses it. */
  deviceKey: string | undefined = undefined
  clientId: string | null = null
  helloPending = false
  /** Set once the socket has closed (the gateway has removed it). */
  closed = false
  /** Tasks subscribed by id; projects; the whole organization. */
  tasks: Set<string> | null = null
  projects: Set<string> | null = null
  all = false
  /** Tasks this socket has shared a presence on (cleared for others when it leaves). */
  presence: Set<string> | null = null
  /** Messages pipelined behind `hello` before the welcome (see dispatch.ts). */
  early: ClientMessage[] | null = null
  /** The acks owed for this socket's mutations (from its first one on). */
  acks: InflightAcks | null = null
  readonly outbox: Outbox
  private readonly bucket: TokenBucket
  private readonly patience: TokenBucket

  constructor(
    readonly ws: WebSocket,
    readonly router: OrgRouter,
    principal: Principal,
    expiresAt: number,
    private readonly shared: SessionShared,
    stream: Corkable | undefined,
    now: number,
  ) {
    this.principal = principal
    this.expiresAt = expiresAt
    this.connectedAt = now
    this.lastSeen = now
    this.outbox = new Outbox(ws, shared.flusher, stream)
    this.bucket = new TokenBucket(shared.rate, now)
    this.patience = new TokenBucket(shared.patience, now)
  }

  get orgId(): string {
    return this.principal.orgId
  }

  get userId(): string {
    return this.principal.userId
  }

  /** One inbound frame: rate limit, parse, validate. The message to run, or null (answered or dropped here). Never throws. */
  accept(data: RawData, isBinary: boolean): ClientMessage | null {
    const now = Date.now()
    this.lastSeen = now
    if (this.closed || this.outbox.closing) return null
    this.shared.stats.in++
    if (isBinary) return this.refuse(() => this.close(CloseCode.POLICY, 'binary frames are not accepted'))
    if (!this.bucket.take(now)) {
      if (!this.patience.take(now)) return this.refuse(() => this.close(CloseCode.POLICY, 'rate limit exceeded repeatedly'))
      return this.refuse(() => this.sendError('rate_limited', `over ${this.shared.rate.ratePerS} messages/s; slow down`))
    }
    const parsed = parseClientMessage(Array.isArray(data) ? Buffer.concat(data).toString() : data.toString())
    if (!parsed.ok) return this.refuse(() => this.sendError('bad_request', parsed.message))
    return parsed.msg
  }

  send(msg: ServerMessage): void {
    this.sendFrame(encode(msg))
  }

  sendFrame(frame: Buffer): void {
    if (this.outbox.send(frame)) this.shared.stats.out++
  }

  sendError(code: ErrorCode, message: string, ref?: { ref?: string | number; seq?: number }): void {
    this.send({ type: 'error', code, message, ...ref })
  }

  /** Queues a close behind what is already queued. */
  close(code: number, reason: string): void {
    this.outbox.close(code, reason)
  }

  /** One op in rev order (from the feed or a replay); its own op's ack goes out in place of the echo. */
  receive(entry: FeedEntry): void {
    const ack = this.acks?.forOp(entry.event)
    if (ack) return this.send(ack)
    this.sendFrame((entry.frame ??= entry.json !== undefined ? textFrame(entry.json) : encode(entry.event)))
  }

  /** A comment change for this socket: its own change's ack goes out in place of the echo. */
  ackComment(notice: CommentNotice): boolean {
    const ack = this.acks?.forComment(notice)
    if (ack) this.send(ack)
    return ack != null
  }

  /** Sends the acks kept for the task's ops up to `upTo` (the feed will not deliver them now). */
  flushAcks(taskId: string, upTo = Infinity): void {
    if (this.acks) for (const ack of this.acks.owed(taskId, upTo)) this.send(ack)
  }

  /** True when this socket's subscriptions cover the task (by id, by its project, or the org). */
  covers(taskId: string, projectId: string | null | undefined): boolean {
    return this.all || this.tasks?.has(taskId) === true || (projectId != null && this.projects?.has(projectId) === true)
  }

  private refuse(answer: () => void): null {
    answer()
    return null
  }
}
