/** Routes one validated client message to its handler. */
import type { ClientMessage } from '../protocol/messages.js'
import type { Session } from './session.js'
import { handleAuth, handleHello } from './handshake.js'
import { handleSubscribe, handleUnsubscribe } from './subscribe.js'
import { handleComment, handleCreate, handleOp } from './mutations.js'
import { handlePresence } from './presence.js'

export async function dispatch(session: Session, msg: ClientMessage): Promise<void> {
  switch (msg.type) {
    case 'ping':
      return session.send({ type: 'pong', serverTime: new Date().toISOString() })
    case 'hello':
      return handleHello(session, msg)
    case 'auth':
      return handleAuth(session, msg)
    case 'subscribe':
      return handleSubscribe(session, msg)
    case 'unsubscribe':
      return handleUnsubscribe(session, msg)
    case 'create':
      return handleCreate(session, msg)
    case 'op':
      return handleOp(session, msg)
    case 'comment':
      return handleComment(session, msg)
    case 'presence':
      return handlePresence(session, msg)
  }
}
