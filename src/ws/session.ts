/**
 * One WebSocket connection: who it is, what it subscribed to, its rate limit and
 * outbound queue, and the acks it still owes. State is kept small (no timers, no
 * closures per socket; sets and maps are allocated on first use) because idle
 * sockets are the common case.
 */
import { randomUUID } from 'node:crypto'
import type { WebSocket, RawData } from 'ws'
import { CloseCode } from '../protocol/close-codes.js'
import type { ErrorCode } from '../protocol/errors.js'
import type { ClientMessage, ServerMessage } from '../protocol/messages.js'
import type { Principal } from '../auth/principal.js'
import { parseClientMessage } from './inbound.js'
import { Outbox, type Corkable } from './outbox.js'
import { TokenBucket } from './token-bucket.js'
import { encode } from './wire.js'
import type { FeedEntry, FeedMember } from './task-feed.js'
import type { Gateway } from './gateway.js'
import type { OrgRouter } from './org-router.js'
import { dispatch } from './dispatch.js'

/** A mutation sent and not yet acked: `rev` is set once committed, while the feed still owes the ack. */
export interface Inflight {
  taskId: string
  rev: number
  comment: boolean
}

/** Messages a client may pipeline behind its `hello` before the welcome; more is a protocol violation. */
const EARLY_MAX = 64

export class Session implements FeedMember {
  readonly id = randomUUID()
  readonly connectedAt: number
  lastSeen: number
  /** Which turn of the heartbeat visits this socket (see Gateway.heartbeat). */
  beatSlot = 0
  principal: Principal
  /** Access token expiry (ms); the socket is closed with 1008 when it passes without an `auth`. */
  expiresAt: number
  clientId: string | null = null
  helloPending = false
  closed = false
  /** Tasks subscribed by id; projects; the whole organization. */
  tasks: Set<string> | null = null
  projects: Set<string> | null = null
  all = false
  inflight: Map<number, Inflight> | null = null
  /** Tasks this socket has shared a presence on (cleared for others when it leaves). */
  presence: Set<string> | null = null
  readonly outbox: Outbox
  readonly router: OrgRouter
  private readonly bucket: TokenBucket
  /** Rejections tolerated before a socket that keeps flooding is closed. */
  private readonly patience: TokenBucket
  private early: ClientMessage[] | null = null

  constructor(
    readonly gateway: Gateway,
    readonly ws: WebSocket,
    principal: Principal,
    expiresAt: number,
    stream: Corkable | undefined,
    now: number,
  ) {
    this.principal = principal
    this.expiresAt = expiresAt
    this.connectedAt = now
    this.lastSeen = now
    this.outbox = new Outbox(ws, gateway.flusher, stream)
    this.bucket = new TokenBucket(gateway.rateSpec, now)
    this.patience = new TokenBucket(gateway.patienceSpec, now)
    this.router = gateway.routerFor(principal.orgId)
  }

  get orgId(): string {
    return this.principal.orgId
  }

  /** One inbound frame: rate limit, parse, validate, dispatch. Never throws. */
  onFrame(data: RawData, isBinary: boolean): void {
    const now = Date.now()
    this.lastSeen = now
    if (this.closed || this.outbox.closing) return
    this.gateway.stats.in++
    if (isBinary) return this.close(CloseCode.POLICY, 'binary frames are not accepted')
    if (!this.bucket.take(now)) {
      if (!this.patience.take(now)) return this.close(CloseCode.POLICY, 'rate limit exceeded repeatedly')
      return this.sendError('rate_limited', `over ${this.gateway.settings.ratePerS} messages/s; slow down`)
    }
    const parsed = parseClientMessage(Array.isArray(data) ? Buffer.concat(data).toString() : data.toString())
    if (!parsed.ok) return this.sendError('bad_request', parsed.message)
    this.handle(parsed.msg)
  }

  /** Runs one valid message; before the welcome only `hello` and `ping` run, the rest wait or are refused. */
  handle(msg: ClientMessage): void {
    if (this.clientId === null && msg.type !== 'hello' && msg.type !== 'ping') {
      if (this.helloPending && (this.early ??= []).length < EARLY_MAX) {
        this.early.push(msg)
        return
      }
      return this.sendError('bad_request', 'send hello first')
    }
    dispatch(this, msg).catch((err) => this.fail(err, msg))
  }

  /** After hello: runs what the client pipelined behind it (or refuses it if hello failed). */
  helloSettled(): void {
    const early = this.early
    this.early = null
    if (early) for (const msg of early) this.handle(msg)
  }

  send(msg: ServerMessage): void {
    this.sendFrame(encode(msg))
  }

  sendFrame(frame: Buffer): void {
    if (this.outbox.send(frame)) this.gateway.stats.out++
  }

  sendError(code: ErrorCode, message: string, ref?: { ref?: string; seq?: number }): void {
    this.send({ type: 'error', code, message, ...ref })
  }

  /** An unexpected rejection of a handler: answered without closing the socket. */
  fail(err: unknown, msg: ClientMessage): void {
    const { code, message } = this.gateway.wireError(err)
    const m = msg as { taskId?: string; seq?: number }
    this.sendError(code, message, { ref: m.taskId, seq: m.seq })
  }

  /** Queues a close behind what is already queued. */
  close(code: number, reason: string): void {
    this.outbox.close(code, reason)
  }

  /** FeedMember: one op in rev order. The submitter gets its ack here, in order, instead of an echo. */
  receive(entry: FeedEntry): void {
    const e = entry.event
    if (e.seq !== null && e.clientId === this.clientId && this.clientId !== null) {
      const pending = this.inflight?.get(e.seq)
      if (pending && !pending.comment && pending.taskId === e.taskId) {
        this.inflight!.delete(e.seq)
        this.sendAck(e.taskId, e.seq, e.rev)
        return
      }
    }
    this.sendFrame((entry.frame ??= encode(e)))
  }

  sendAck(taskId: string, seq: number, rev: number, noop = false): void {
    this.send(noop ? { type: 'ack', taskId, seq, rev, noop } : { type: 'ack', taskId, seq, rev })
  }

  /** Sends the acks the feed of `taskId` owed for revs ≤ upTo (it will not deliver them now). */
  flushAcks(taskId: string, upTo = Infinity): void {
    if (!this.inflight) return
    for (const [seq, p] of this.inflight) {
      if (p.taskId === taskId && !p.comment && p.rev > 0 && p.rev <= upTo) {
        this.inflight.delete(seq)
        this.sendAck(taskId, seq, p.rev)
      }
    }
  }

  /** True when this socket's subscriptions cover the task (by id, by its project, or the org). */
  covers(taskId: string, projectId: string | null | undefined): boolean {
    return this.all || this.tasks?.has(taskId) === true || (projectId != null && this.projects?.has(projectId) === true)
  }
}
