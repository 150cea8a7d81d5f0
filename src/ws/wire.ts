/** Encoding of server messages and the mapping of failures to wire error codes. */
import type { ErrorCode } from '../protocol/errors.js'
import type { ServerMessage } from '../protocol/messages.js'
import { BusUnavailableError } from '../bus/types.js'
import { clientError } from '../storage/errors.js'
import type { GatewayLogger } from './ports.js'

/** One message as a UTF-8 text frame, ready to hand to any number of sockets. */
export const encode = (msg: ServerMessage): Buffer => Buffer.from(JSON.stringify(msg))

/**
 * A failure as the client sees it: ours and storage faults as storage/errors.ts
 * maps them (unreachable storage is `unavailable`: nothing was committed, a resend
 * with the same clientId and seq is safe), a bus that cannot publish is
 * `unavailable` too; anything else is logged and `internal`.
 */
export function toWireError(err: unknown, log: GatewayLogger): { code: ErrorCode; message: string } {
  const known = clientError(err, log)
  if (known) return { code: known.code, message: known.message }
  if (err instanceof BusUnavailableError) {
    log.warn({ err }, 'bus unavailable')
    return { code: 'unavailable', message: err.message }
  }
  log.error({ err }, 'unexpected error in the WebSocket gateway')
  return { code: 'internal', message: 'internal error' }
}
