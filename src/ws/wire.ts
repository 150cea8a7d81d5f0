/** Encoding of server messages and the mapping of failures to wire error codes. */
import type { ErrorCode } from '../protocol/errors.js'
import type { ServerMessage } from '../protocol/messages.js'
import { BusUnavailableError } from '../bus/types.js'
import { clientError } from '../storage/errors.js'
import type { GatewayLogger } from './ports.js'

/**
 * One message as a complete WebSocket text frame (RFC 6455 section 5.2: header,
 * then the UTF-8 JSON), ready to write as it is to any number of sockets. Frames a
 * server sends are unmasked and this server never compresses them
 * (perMessageDeflate is off), so the bytes, header included, are the same for every
 * socket: a broadcast is built once and each socket gets the same Buffer.
 */
export const encode = (msg: ServerMessage): Buffer => textFrame(JSON.stringify(msg))

/** `text` as one unmasked, final WebSocket text frame. */
export function textFrame(json: string): Buffer {
  const length = Buffer.byteLength(json)
  const headerLength = length < 126 ? 2 : length < 65_536 ? 4 : 10
  const frame = Buffer.allocUnsafe(headerLength + length)
  frame[0] = 0x81 // FIN, opcode 1 (text)
  if (headerLength === 2) frame[1] = length
  else if (headerLength === 4) {
    frame[1] = 126
    frame.writeUInt16BE(length, 2)
  } else {
    frame[1] = 127
    frame.writeBigUInt64BE(BigInt(length), 2)
  }
  frame.write(json, headerLength, 'utf8')
  return frame
}

/** The message inside a frame from `encode` (a view, no copy). */
export function payloadOf(frame: Buffer): Buffer {
  const marker = frame[1] & 0x7f
  return frame.subarray(marker < 126 ? 2 : marker === 126 ? 4 : 10)
}

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
