/** `hello` (bind the clientId to the token's device) and `auth` (in-band token refresh). */
import { CloseCode } from '../protocol/close-codes.js'
import type { AuthMessage, HelloMessage } from '../protocol/messages.js'
import type { Session } from './session.js'
import { toMillis } from './ports.js'

export async function handleHello(session: Session, msg: HelloMessage): Promise<void> {
  if (session.clientId !== null || session.helloPending) return session.sendError('bad_request', 'hello was already received')
  session.helloPending = true
  try {
    await session.gateway.deps.sequencer.bindClient(session.principal, msg.clientId)
  } catch (err) {
    session.helloPending = false
    const { code, message } = session.gateway.wireError(err)
    session.sendError(code, message, { ref: msg.clientId })
    session.helloSettled()
    return
  }
  session.helloPending = false
  if (session.closed) return
  session.clientId = msg.clientId
  session.gateway.welcomed(session)
  session.send({
    type: 'welcome',
    sessionId: session.id,
    instanceId: session.gateway.deps.instanceId,
    serverTime: new Date().toISOString(),
    heartbeatMs: session.gateway.settings.heartbeatMs,
  })
  session.helloSettled()
}

/**
 * A fresh token on a long-lived socket. It must name the same organization, user
 * and device: anything else is a different identity, and the socket is closed.
 * An invalid token is refused and the current one stays in force until it expires.
 */
export async function handleAuth(session: Session, msg: AuthMessage): Promise<void> {
  let verified
  try {
    verified = await session.gateway.deps.tokens.verifyAccess(msg.token)
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
