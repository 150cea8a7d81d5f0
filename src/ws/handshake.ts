/** `hello` (bind the clientId to the token's device) and `auth` (in-band token refresh). */
import { CloseCode } from '../protocol/close-codes.js'
import type { ErrorCode } from '../protocol/errors.js'
import type { AuthMessage, HelloMessage } from '../protocol/messages.js'
import type { Principal } from '../auth/principal.js'
import type { Session } from './session.js'
import { toMillis, type VerifiedToken } from './ports.js'

/** What `hello` needs besides the socket. */
export interface HelloContext {
  instanceId: string
  heartbeatMs: number
  bindClient(principal: Principal, clientId: string): Promise<void>
  wireError(err: unknown): { code: ErrorCode; message: string }
  /** The socket is welcomed: its hello timeout no longer runs. */
  welcomed(session: Session): void
  /** Hello is settled (welcomed or refused): run, or refuse, what the client pipelined behind it. */
  settled(session: Session): void
}

/** What `auth` needs besides the socket. */
export interface AuthContext {
  /** Throws on an invalid, expired or revoked token. */
  verifyAccess(token: string, deviceKey?: string): Promise<VerifiedToken>
}

export async function handleHello(ctx: HelloContext, session: Session, msg: HelloMessage): Promise<void> {
  if (session.clientId !== null || session.helloPending) return session.sendError('bad_request', 'hello was already received')
  session.helloPending = true
  try {
    await ctx.bindClient(session.principal, msg.clientId)
  } catch (err) {
    session.helloPending = false
    const { code, message } = ctx.wireError(err)
    session.sendError(code, message, { ref: msg.clientId })
    ctx.settled(session)
    return
  }
  session.helloPending = false
  if (session.closed) return
  session.clientId = msg.clientId
  ctx.welcomed(session)
  session.send({
    type: 'welcome',
    sessionId: session.id,
    instanceId: ctx.instanceId,
    serverTime: new Date().toISOString(),
    heartbeatMs: ctx.heartbeatMs,
  })
  ctx.settled(session)
}

/**
 * A fresh token on a long-lived socket. It must name the same organization, user
 * and device: anything else is a different identity, and the socket is closed.
 * An invalid token is refused and the current one stays in force until it expires.
 */
export async function handleAuth(ctx: AuthContext, session: Session, msg: AuthMessage): Promise<void> {
  let verified
  try {
    // An identity provider's token names no device: the socket's device key still does.
    verified = await ctx.verifyAccess(msg.token, session.deviceKey)
  } catch {
    return session.sendError('unauthorized', 'the token is invalid, expired or revoked')
  }
  const now = session.principal
  const next = verified.principal
  if (next.orgId !== now.orgId || next.userId !== now.userId || next.deviceId !== now.deviceId) {
    session.sendError('unauthorized', 'the token belongs to another user, organization or device')
    return session.close(CloseCode.POLICY, 'auth changed identity')
  }
  session.principal = next
  session.expiresAt = toMillis(verified.expiresAt)
  session.send({ type: 'authed', expiresAt: new Date(session.expiresAt).toISOString() })
}
