/**
 * Runs one valid client message: before the welcome only `hello` and `ping` run
 * (what a client pipelines behind its hello waits for it, up to a bound), the
 * rest goes to its handler with the narrow context it declares. A handler's
 * unexpected rejection is answered on the socket, which stays open.
 */
import type { ClientMessage } from '../protocol/messages.js'
import type { Session } from './session.js'
import { handleAuth, handleHello, type AuthContext, type HelloContext } from './handshake.js'
import { handleSubscribe, handleUnsubscribe, type SubscribeContext } from './subscribe.js'
import { handleComment, handleCreate, handleOp, type MutationContext } from './mutations.js'
import { handlePresence, type PresenceContext } from './presence.js'

/** Everything the handlers need: the gateway builds it once. */
export type HandlerContext = HelloContext & AuthContext & SubscribeContext & MutationContext & PresenceContext

/** Messages a client may pipeline behind its `hello` before the welcome; more is a protocol violation. */
const EARLY_MAX = 64

export function dispatch(ctx: HandlerContext, session: Session, msg: ClientMessage): void {
  if (session.clientId === null && msg.type !== 'hello' && msg.type !== 'ping') {
    if (session.helloPending && (session.early ??= []).length < EARLY_MAX) {
      session.early.push(msg)
      return
    }
    return session.sendError('bad_request', 'send hello first')
  }
  run(ctx, session, msg).catch((err) => {
    const { code, message } = ctx.wireError(err)
    const m = msg as { taskId?: string; seq?: number }
    session.sendError(code, message, { ref: m.taskId, seq: m.seq })
  })
}

/** After hello: runs what the client pipelined behind it (or refuses it if hello failed). */
export function runEarly(ctx: HandlerContext, session: Session): void {
  const early = session.early
  session.early = null
  if (early) for (const msg of early) dispatch(ctx, session, msg)
}

async function run(ctx: HandlerContext, session: Session, msg: ClientMessage): Promise<void> {
  switch (msg.type) {
    case 'ping':
      return session.send({ type: 'pong', serverTime: new Date().toISOString() })
    case 'hello':
      return handleHello(ctx, session, msg)
    case 'auth':
      return handleAuth(ctx, session, msg)
    case 'subscribe':
      return handleSubscribe(ctx, session, msg)
    case 'unsubscribe':
      return handleUnsubscribe(session, msg)
    case 'create':
      return handleCreate(ctx, session, msg)
    case 'op':
      return handleOp(ctx, session, msg)
    case 'comment':
      return handleComment(ctx, session, msg)
    case 'presence':
      return handlePresence(ctx, session, msg)
  }
}
