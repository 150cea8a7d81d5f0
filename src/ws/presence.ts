/**
 * Presence: ephemeral, never stored, never acked. A socket shares a small state
 * on a task it is subscribed to; every instance relays it (bus channel of the
 * org) to the other sockets covering the task. Each instance forgets a presence
 * not refreshed within the TTL (telling its sockets `state: null`), so a client
 * that goes quiet, or whose instance dies, fades everywhere; a socket that closes
 * clears its presences at once.
 */
import type { PresenceMessage } from '../protocol/messages.js'
import type { PresenceNotice } from '../bus/notices.js'
import type { ErrorCode } from '../protocol/errors.js'
import type { Session } from './session.js'

/** Largest accepted presence state, serialized. */
export const PRESENCE_MAX_BYTES = 2048

/** What the presence handler needs besides the socket and its org's router. */
export interface PresenceContext {
  instanceId: string
  wireError(err: unknown): { code: ErrorCode; message: string }
}

export async function handlePresence(ctx: PresenceContext, session: Session, msg: PresenceMessage): Promise<void> {
  const router = session.router
  const projectId = router.projectOf(msg.taskId)
  if (!session.covers(msg.taskId, projectId)) {
    return session.sendError('bad_request', 'subscribe to the task before sharing presence on it', { ref: msg.taskId })
  }
  if (msg.state !== null && JSON.stringify(msg.state).length > PRESENCE_MAX_BYTES) {
    return session.sendError('too_large', `a presence state is at most ${PRESENCE_MAX_BYTES} bytes`, { ref: msg.taskId })
  }
  if (msg.state === null) session.presence?.delete(msg.taskId)
  else (session.presence ??= new Set()).add(msg.taskId)
  const notice: PresenceNotice = {
    kind: 'presence',
    from: ctx.instanceId,
    orgId: session.orgId,
    taskId: msg.taskId,
    projectId,
    userId: session.userId,
    clientId: session.clientId!,
    state: msg.state,
  }
  try {
    await router.sharePresence(notice)
  } catch (err) {
    const { code, message } = ctx.wireError(err)
    session.sendError(code, message, { ref: msg.taskId })
  }
}
