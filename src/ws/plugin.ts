/**
 * The fastify adapter of the gateway: GET /ws through @fastify/websocket. The
 * token is checked before the upgrade (no valid token, no socket: HTTP 401 in
 * the one error shape); the authenticated socket is handed to the framework-free
 * Gateway. On close: no new sockets, begun commits finish and are acked, every
 * socket is closed with 1012, all within SHUTDOWN_TIMEOUT_MS.
 */
import fp from 'fastify-plugin'
import websocket from '@fastify/websocket'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import type { Socket } from 'node:net'
import type { WebSocket } from 'ws'
import { TaskSyncError, type ErrorBody } from '../protocol/errors.js'
import { Gateway, type GatewayDeps } from './gateway.js'
import type { TokenPort, VerifiedToken } from './ports.js'
import { latestRevs } from '../storage/tasks.js'
import { registerWsMetrics } from './metrics.js'
import { recordSyncs } from '../storage/sync/log.js'
import { batchedResumeLog } from './resume-log.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The WebSocket gateway (sockets, feeds, fan-out). */
    gateway: Gateway
  }
  interface FastifyRequest {
    /** The verified token of an upgrade request (set before the upgrade). */
    wsAuth?: VerifiedToken
  }
}

/** The access token of an upgrade request: `Authorization: Bearer …` or `?access_token=` (browsers). */
function tokenOf(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization
  if (header?.startsWith('Bearer ')) return header.slice(7).trim() || undefined
  const q = (request.query as Record<string, unknown> | undefined)?.access_token
  return typeof q === 'string' && q ? q : undefined
}

/** The device key of an identity provider's token: `?device_key=` (browsers) or `X-Device-Key`. */
function deviceKeyOf(request: FastifyRequest): string | undefined {
  const q = (request.query as Record<string, unknown> | undefined)?.device_key
  if (typeof q === 'string') return q
  const header = request.headers['x-device-key']
  return typeof header === 'string' ? header : undefined
}

function refuse(reply: FastifyReply, status: number, code: ErrorBody['error']['code'], message: string): FastifyReply {
  const body: ErrorBody = { error: { code, message } }
  return reply.code(status).header('connection', 'close').send(body)
}

/**
 * Lets the upgrade's request and reply be collected: @fastify/websocket keeps
 * them in the socket's error listener and Node in the socket's response slot,
 * several KB per idle socket. A shared listener replaces the first; the response
 * is detached from the socket. Detaching costs no timeout: Node drops its HTTP
 * timeouts from a socket before emitting 'upgrade', and the destroy of a close
 * handshake that does not finish is ws's own timer (closeTimeout below).
 */
function releaseUpgradeRequest(ws: WebSocket): void {
  ws.removeAllListeners('error')
  ws.on('error', onSocketError)
  const raw = (ws as unknown as { _socket?: { _httpMessage?: { detachSocket(s: unknown): void } | null } })._socket
  raw?._httpMessage?.detachSocket(raw)
}

/**
 * An error on an established socket: ws has already started the close with the
 * right code (1009 for a frame over maxPayload, 1002 for a malformed one) or
 * destroyed a broken connection; terminating here could drop that close frame.
 */
function onSocketError(): void {}

/**
 * From the first moment of close(), upgrade requests are answered 503 here and
 * their sockets destroyed. Fastify's own answer while closing would leave an
 * upgrade socket open, and the server's close would wait on it.
 */
function refuseUpgradesWhileDraining(app: FastifyInstance, draining: () => boolean, timeoutMs: number): void {
  const server = app.server
  const upgraders = server.listeners('upgrade') as ((req: IncomingMessage, socket: Duplex, head: Buffer) => void)[]
  server.removeAllListeners('upgrade')
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (!draining()) {
      bound(socket as Socket, timeoutMs)
      for (const upgrade of upgraders) upgrade.call(server, req, socket, head)
      return
    }
    unavailable(socket, 'the server is restarting; reconnect elsewhere')
  })
}

/** Answers an upgrade request 503 on its raw socket and closes it. */
function unavailable(socket: Duplex, message: string): void {
  const body = JSON.stringify({ error: { code: 'unavailable', message } } satisfies ErrorBody)
  socket.on('error', () => socket.destroy())
  socket.once('finish', () => socket.destroy())
  socket.end(
    `HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  )
}

/**
 * Node drops its HTTP timeouts from a socket once its upgrade head is read, so an
 * upgrade the server cannot finish (its token check stuck on the database) would be
 * held forever. Nothing written within `timeoutMs` (no 101, no refusal): 503, closed.
 */
function bound(socket: Socket, timeoutMs: number): void {
  const timer = setTimeout(() => {
    if (!socket.destroyed && socket.bytesWritten === 0) unavailable(socket, 'the upgrade could not be completed in time; retry')
  }, timeoutMs)
  timer.unref()
  socket.once('close', () => clearTimeout(timer))
}

export default fp(
  async (app: FastifyInstance) => {
    const { config } = app
    const tokens: TokenPort = app.tokens
    const resumeLog = batchedResumeLog(
      (entries) => recordSyncs(app.database, entries),
      (err, lost) => app.log.warn({ err, lost }, 'sync log entries for resumes not written'),
    )
    app.addHook('onClose', async () => {
      await resumeLog.flush().catch(() => {})
    })
    const deps: GatewayDeps = {
      instanceId: app.instanceId,
      bus: app.bus,
      sequencer: app.sequencer,
      comments: app.comments,
      attachments: app.attachments,
      tokens,
      reads: {
        latestRevs: (keys) => latestRevs(app.database, keys),
        projectExists: (orgId, projectId) => app.taskStore.projectExists(orgId, projectId),
      },
      log: app.log.child({ module: 'ws' }),
      // Resumes go to the sync log without holding up the socket, gathered into one statement
      // when they come together (a storm); a lost line is only logged.
      recordResume: resumeLog,
    }
    let gateway: Gateway | undefined
    const metrics = registerWsMetrics(app.metrics.registry, () => gateway)
    gateway = new Gateway(
      deps,
      {
        maxBufferedBytes: config.WS_MAX_BUFFERED_BYTES,
        ratePerS: config.WS_RATE_PER_S,
        rateBurst: config.WS_RATE_BURST,
        heartbeatMs: config.WS_HEARTBEAT_MS,
        helloTimeoutMs: config.WS_HELLO_TIMEOUT_MS,
        maxSockets: config.WS_MAX_SOCKETS,
        replayWindowOps: config.REPLAY_WINDOW_OPS,
        probeMs: config.WS_PROBE_MS,
        presenceTtlMs: config.WS_PRESENCE_TTL_MS,
        dropPublication: config.TASKSYNC_FAULT === 'drop-publication',
      },
      metrics,
    )
    const gw = gateway
    app.decorate('gateway', gw)
    app.connections.count = () => gw.socketCount

    await app.register(websocket, {
      // closeTimeout is a ws server option its type definitions do not list yet.
      options: {
        maxPayload: config.WS_MAX_MESSAGE_BYTES,
        perMessageDeflate: false,
        // The gateway tracks its sockets; ws's own set would only cost memory.
        clientTracking: false,
        // ws destroys the connection when a close handshake has not finished this long after
        // ws.close(): its timer starts at close(), even when the close frame is stuck behind a
        // full send buffer (a client that stopped reading, cut with 4009).
        closeTimeout: config.WS_CLOSE_TIMEOUT_MS,
      } as Record<string, unknown>,
      // Replaces the plugin's default (close every socket at once, code 1005).
      preClose: async () => {
        await gw.shutdown(config.SHUTDOWN_TIMEOUT_MS)
      },
    })
    gw.start()
    refuseUpgradesWhileDraining(app, () => app.draining || gw.draining, config.HTTP_REQUEST_TIMEOUT_MS)
    // A revoked device loses its sockets at once, on every instance.
    app.tokens.onDeviceRevoked((orgId, deviceId) => gw.closeDevice(orgId, deviceId))

    app.get(
      '/ws',
      {
        websocket: true,
        schema: { hide: true },
        preValidation: async (request, reply) => {
          if (app.draining || gw.draining) return refuse(reply, 503, 'unavailable', 'the server is restarting; reconnect elsewhere')
          // Browsers send Origin and let any page open a socket: only listed sites may
          // (cross-site WebSocket hijacking). Other clients send none and are not concerned.
          const origin = request.headers.origin
          if (origin !== undefined && config.wsOrigins !== '*' && !config.wsOrigins.includes(origin.toLowerCase())) {
            return refuse(reply, 403, 'forbidden', `WebSockets from origin ${origin.slice(0, 200)} are not allowed`)
          }
          const token = tokenOf(request)
          if (!token) return refuse(reply, 401, 'unauthorized', 'an access token is required (Authorization: Bearer, or ?access_token=)')
          try {
            request.wsAuth = await tokens.verifyAccess(token, deviceKeyOf(request))
          } catch (err) {
            // A valid token without a tasksync role, or the identity provider's keys out of reach, say so.
            if (err instanceof TaskSyncError && (err.code === 'forbidden' || err.code === 'unavailable')) return refuse(reply, err.status, err.code, err.message)
            return refuse(reply, 401, 'unauthorized', 'the access token is invalid, expired or revoked')
          }
        },
      },
      (socket, request) => {
        const auth = request.wsAuth!
        releaseUpgradeRequest(socket)
        gw.open(socket, auth)
      },
    )
  },
  { name: 'ws', dependencies: ['config', 'storage', 'bus', 'metrics', 'sequencer', 'comments', 'attachments', 'auth'] },
)
