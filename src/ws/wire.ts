/** Encoding of server messages and the mapping of failures to wire error codes. */
import { TaskSyncError, type ErrorCode } from '../protocol/errors.js'
import type { ServerMessage } from '../protocol/messages.js'
import { isStorageUnavailable } from '../storage/errors.js'
import type { GatewayLogger } from './ports.js'

/** One message as a UTF-8 text frame, ready to hand to any number of sockets. */
export const encode = (msg: ServerMessage): Buffer => Buffer.from(JSON.stringify(msg))

/**
 * A failure as the client sees it. Ours (TaskSyncError) keep their code; storage
 * or bus failures are `unavailable` (nothing was committed: retry, a resend with
 * the same clientId and seq is safe); anything else is logged and `internal`.
 */
export function toWireError(err: unknown, log: GatewayLogger): { code: ErrorCode; message: string } {
  if (err instanceof TaskSyncError) return { code: err.code, message: err.message }
  if (isStorageUnavailable(err) || isBusFailure(err)) {
    log.warn({ err }, 'storage or bus unavailable')
    return { code: 'unavailable', message: 'storage is unavailable; nothing was committed, retry' }
  }
  log.error({ err }, 'unexpected error in the WebSocket gateway')
  return { code: 'internal', message: 'internal error' }
}

/** ioredis rejects at once while disconnected (offline queue off) or on a closed bus. */
function isBusFailure(err: unknown): boolean {
  const message = (err as { message?: unknown })?.message
  return typeof message === 'string' && /Stream isn't writeable|Connection is closed|bus is closed|ECONNREFUSED|Command timed out/i.test(message)
}
