/**
 * The WebSocket gateway core, framework-free: it takes authenticated ws sockets
 * and runs them. It owns the sessions, one OrgRouter per organization with local
 * sockets, the shared flusher, and three shared timers (none per socket): a tick
 * for hello timeouts, token expiry, presence expiry and idle routers; the
 * heartbeat; and the probe of latest revs that repairs lost last publications.
 * Each message goes to its handler (dispatch.ts) with one context built here once;
 * no handler sees the gateway.
 */
import type { RawData, WebSocket } from 'ws'
import type { Bus } from '../bus/types.js'
import { CloseCode } from '../protocol/close-codes.js'
import type { AttachmentsPort, CommentsPort, GatewayLogger, GatewaySettings, ReadPort, SequencerPort, TokenPort, VerifiedToken } from './ports.js'
import { toMillis } from './ports.js'
import { Flusher, type Corkable } from './outbox.js'
import { OrgRouter, type RouterDeps } from './org-router.js'
import { Session, type SessionShared } from './session.js'
import { dispatch, runEarly, type HandlerContext } from './dispatch.js'
import type { ResumeRecorder } from './subscribe.js'
import { ResumeReads } from './resume-reads.js'
import { toWireError } from './wire.js'

export interface GatewayDeps {
  instanceId: string
  bus: Bus
  sequencer: SequencerPort
  comments: CommentsPort
  /** Completed and deleted attachments of this instance, delivered like comment changes. */
  attachments?: AttachmentsPort
  tokens: TokenPort
  reads: ReadPort
  log: GatewayLogger
  /** Takes every socket resume (a `subscribe` with `since`) for the sync log. */
  recordResume?: ResumeRecorder
}

export interface GatewayMetrics {
  ackLatency(seconds: number): void
  cut(): void
}

/** How long a router of an org with no socket left stays subscribed (reconnect storms). */
const ROUTER_LINGER_MS = 5000
/**
 * The heartbeat visits the sockets in this many turns spread over its interval
 * (at most one per 100 ms): pinging every socket at once is a burst of writes
 * that holds up everything else on the loop.
 */
const HEARTBEAT_TURNS = 10
/** Most feeds probed in one query. */
const PROBE_CHUNK = 1000

export class Gateway {
  readonly sessions = new Set<Session>()
  /** Sockets opened so far (each takes the next heartbeat slot) and the heartbeat's next turn. */
  private opened = 0
  private beatTurn = 0
  /** Sockets that have not been welcomed yet (hello timeout). */
  private readonly unwelcomed = new Set<Session>()
  private readonly orgs = new Map<string, OrgRouter>()
  readonly flusher: Flusher
  /** Messages in and out (read by the metrics collector). */
  readonly stats = { in: 0, out: 0 }
  draining = false
  private readonly shared: SessionShared
  private readonly routerDeps: RouterDeps
  private readonly handlers: HandlerContext
  private readonly timers: NodeJS.Timeout[] = []
  private readonly unlisten: (() => void)[] = []
  private probing = false
  private busWasDown = false
  /** The subscribe path's snapshot and op-log reads, coalesced across sockets. */
  readonly resumeReads: ResumeReads

  constructor(
    readonly deps: GatewayDeps,
    readonly settings: GatewaySettings,
    readonly metrics: GatewayMetrics = { ackLatency: () => {}, cut: () => {} },
  ) {
    this.flusher = new Flusher(settings.maxBufferedBytes, () => metrics.cut())
    this.resumeReads = new ResumeReads(deps.sequencer)
    // A socket still flooding after about half a burst of refusals is closed.
    const patience = Math.max(10, Math.floor(settings.rateBurst / 2))
    this.shared = {
      flusher: this.flusher,
      rate: { ratePerS: settings.ratePerS, burst: settings.rateBurst },
      patience: { ratePerS: patience / 10, burst: patience },
      stats: this.stats,
    }
    this.routerDeps = {
      instanceId: deps.instanceId,
      bus: deps.bus,
      log: deps.log,
      reads: {
        snapshot: (orgId, taskId) => deps.sequencer.snapshot(orgId, taskId),
        opsSince: (orgId, taskId, fromRev, limit) => deps.sequencer.opsSince(orgId, taskId, fromRev, limit),
      },
      presenceTtlMs: settings.presenceTtlMs,
      dropPublication: settings.dropPublication,
      feedTiming: { gapGraceMs: 30, maxRetryMs: 2000, recentEntries: 32, repairBatch: 500 },
    }
    const handlers: HandlerContext = {
      instanceId: deps.instanceId,
      heartbeatMs: settings.heartbeatMs,
      replayWindowOps: settings.replayWindowOps,
      bindClient: (principal, clientId) => deps.sequencer.bindClient(principal, clientId),
      verifyAccess: (token, deviceKey) => deps.tokens.verifyAccess(token, deviceKey),
      sequencer: deps.sequencer,
      comments: deps.comments,
      reads: {
        // Shared between the sockets resuming at the same time (a storm after a lost instance).
        snapshots: (orgId, taskIds) => this.resumeReads.snapshots(orgId, taskIds),
        opsSince: (orgId, taskId, fromRev, limit) => this.resumeReads.opsSince(orgId, taskId, fromRev, limit),
        projectExists: (orgId, projectId) => deps.reads.projectExists(orgId, projectId),
      },
      recordResume: deps.recordResume,
      ackLatency: metrics.ackLatency,
      wireError: (err) => toWireError(err, deps.log),
      welcomed: (session) => void this.unwelcomed.delete(session),
      settled: (session) => runEarly(handlers, session),
    }
    this.handlers = handlers
  }

  /** Starts listening to local commits and the shared timers. */
  start(): void {
    this.unlisten.push(this.deps.sequencer.onCommit((n) => this.orgs.get(n.orgId)?.route(n)))
    this.unlisten.push(this.deps.comments.onComment((n) => this.orgs.get(n.orgId)?.route(n)))
    if (this.deps.attachments) this.unlisten.push(this.deps.attachments.onAttachment((n) => this.orgs.get(n.orgId)?.route(n)))
    const tickMs = Math.max(20, Math.min(1000, this.settings.helloTimeoutMs / 4))
    this.every(tickMs, () => this.tick())
    const turns = Math.max(1, Math.min(HEARTBEAT_TURNS, Math.floor(this.settings.heartbeatMs / 100)))
    this.every(this.settings.heartbeatMs / turns, () => this.heartbeat(turns))
    this.every(this.settings.probeMs, () => void this.probe())
  }

  get socketCount(): number {
    return this.sessions.size
  }

  /**
   * Runs an authenticated socket. Listeners are attached here, synchronously, so
   * no frame is lost. Over the socket cap (or while draining) it is closed at once
   * with 1013 (or 1012).
   */
  open(ws: WebSocket, auth: VerifiedToken): Session | null {
    if (this.draining || this.sessions.size >= this.settings.maxSockets) {
      const code = this.draining ? CloseCode.RESTARTING : CloseCode.OVERLOADED
      ws.close(code, this.draining ? 'server restarting' : 'too many connections; back off')
      return null
    }
    const stream = (ws as unknown as { _socket?: Corkable })._socket
    const router = this.routerFor(auth.principal.orgId)
    const session = new Session(ws, router, auth.principal, toMillis(auth.expiresAt), this.shared, stream, Date.now())
    session.beatSlot = this.opened++
    session.deviceKey = auth.deviceKey
    ;(ws as unknown as Record<symbol, Session>)[kSession] = session
    ws.on('message', this.onMessage)
    ws.on('pong', onPong)
    ws.once('close', this.onClose)
    this.sessions.add(session)
    this.unwelcomed.add(session)
    router.attach()
    return session
  }

  // Listeners shared by every socket of this gateway (`this` is the socket): no closure per connection.
  private readonly onMessage = messageListener(this)
  private readonly onClose = closeListener(this)

  /** Closes every socket of a revoked device (1008). */
  closeDevice(orgId: string, deviceId: string): void {
    for (const s of this.sessions) {
      if (s.orgId === orgId && s.principal.deviceId === deviceId) s.close(CloseCode.POLICY, 'device revoked')
    }
  }

  /** The router of an org with sockets here (created, and subscribed to the bus, on first use). */
  routerFor(orgId: string): OrgRouter {
    let router = this.orgs.get(orgId)
    if (!router) this.orgs.set(orgId, (router = new OrgRouter(orgId, this.routerDeps)))
    return router
  }

  /** Parses and runs one frame of a socket. */
  receive(session: Session, data: RawData, isBinary: boolean): void {
    const msg = session.accept(data, isBinary)
    if (msg) dispatch(this.handlers, session, msg)
  }

  /** A socket closed: it leaves everything it was part of. */
  remove(session: Session): void {
    if (session.closed) return
    session.closed = true
    this.sessions.delete(session)
    this.unwelcomed.delete(session)
    session.router.detach(session)
  }

  /**
   * Shutdown: no new sockets, begun commits finish (their acks are queued), then
   * every socket is closed with 1012; whatever has not closed by the deadline is
   * destroyed.
   */
  async shutdown(timeoutMs: number): Promise<void> {
    this.draining = true
    const deadline = Date.now() + timeoutMs
    const remaining = () => Math.max(0, deadline - Date.now())
    await withTimeout(this.deps.sequencer.drain(), remaining() * 0.7).catch((err) => this.deps.log.warn({ err }, 'sequencer drain did not finish'))
    // Let acks of the last commits reach the outboxes, then write them before the closes.
    await new Promise((resolve) => setImmediate(resolve))
    for (const s of this.sessions) s.close(CloseCode.RESTARTING, 'server restarting; reconnect elsewhere')
    this.flusher.run()
    await withTimeout(
      new Promise<void>((resolve) => {
        const check = () => (this.sessions.size === 0 ? resolve() : setTimeout(check, 20).unref())
        check()
      }),
      remaining(),
    ).catch(() => {})
    for (const s of [...this.sessions]) s.ws.terminate()
    this.stop()
    await Promise.all([...this.orgs.values()].map((r) => r.close()))
    this.orgs.clear()
  }

  /** Stops timers and listeners (sockets are left to their owner). */
  stop(): void {
    for (const t of this.timers) clearInterval(t)
    this.timers.length = 0
    for (const off of this.unlisten) off()
    this.unlisten.length = 0
  }

  private every(ms: number, fn: () => void): void {
    const t = setInterval(fn, ms)
    t.unref()
    this.timers.push(t)
  }

  /** Hello timeouts, expired tokens, stale presences, routers of orgs that left. */
  private tick(): void {
    const now = Date.now()
    for (const s of this.unwelcomed) {
      if (!s.helloPending && now - s.connectedAt > this.settings.helloTimeoutMs) {
        this.unwelcomed.delete(s)
        s.close(CloseCode.POLICY, 'no hello in time')
      }
    }
    for (const s of this.sessions) if (s.expiresAt <= now) s.close(CloseCode.POLICY, 'access token expired; reconnect with a fresh one')
    // Publications are likeliest to have been lost while the bus was down: probe as soon as it is back.
    const busUp = this.deps.bus.status() === 'up'
    if (!busUp) this.busWasDown = true
    else if (this.busWasDown) void this.probe()
    for (const [orgId, router] of this.orgs) {
      router.expirePresence(now)
      if (router.sessions === 0 && now - router.idleSince > ROUTER_LINGER_MS) {
        this.orgs.delete(orgId)
        void router.close()
      }
    }
  }

  /**
   * One turn of the heartbeat: each socket gets its ping once per beat, in its
   * own turn (the contract's "ping every beat" holds per socket, clients may
   * watch for it). One silent for two beats is dropped.
   */
  private heartbeat(turns: number): void {
    const turn = this.beatTurn
    this.beatTurn = (turn + 1) % turns
    const now = Date.now()
    const limit = 2 * this.settings.heartbeatMs
    for (const s of this.sessions) {
      if (s.beatSlot % turns !== turn) continue
      if (now - s.lastSeen > limit) s.ws.terminate()
      else if (s.ws.readyState === 1) s.ws.ping()
    }
  }

  /**
   * Asks storage for the latest rev of every followed task: a publication lost
   * after the last op of a burst has no later op to reveal it, this does.
   * Also runs right after the bus comes back, when losses are likeliest.
   */
  async probe(): Promise<void> {
    if (this.probing) return
    const busUp = this.deps.bus.status() === 'up'
    if (!busUp) this.busWasDown = true
    this.probing = true
    try {
      const feeds = [...this.orgs.values()].flatMap((r) => [...r.probeTargets()])
      for (let i = 0; i < feeds.length; i += PROBE_CHUNK) {
        const chunk = feeds.slice(i, i + PROBE_CHUNK)
        const revs = await this.deps.reads.latestRevs(chunk.map((f) => ({ orgId: f.orgId, taskId: f.taskId })))
        const byKey = new Map(revs.map((r) => [`${r.orgId}:${r.taskId}`, r.rev]))
        for (const f of chunk) {
          const rev = byKey.get(`${f.orgId}:${f.taskId}`)
          if (rev !== undefined) f.noteCommitted(rev)
        }
      }
      if (busUp) this.busWasDown = false
    } catch (err) {
      this.deps.log.warn({ err }, 'latest-rev probe failed')
    } finally {
      this.probing = false
    }
  }
}

const kSession = Symbol('tasksync.session')

const sessionOf = (ws: WebSocket): Session => (ws as unknown as Record<symbol, Session>)[kSession]

function onPong(this: WebSocket): void {
  sessionOf(this).lastSeen = Date.now()
}

function messageListener(gateway: Gateway) {
  return function (this: WebSocket, data: RawData, isBinary: boolean): void {
    gateway.receive(sessionOf(this), data, isBinary)
  }
}

function closeListener(gateway: Gateway) {
  return function (this: WebSocket): void {
    gateway.remove(sessionOf(this))
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms)
    p.then(
      (v) => (clearTimeout(t), resolve(v)),
      (e) => (clearTimeout(t), reject(e)),
    )
  })
}
