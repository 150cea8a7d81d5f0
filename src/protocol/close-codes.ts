/** WebSocket close codes (PROTOCOL.md section 3). */
export const CloseCode = {
  /** Normal close. */
  NORMAL: 1000,
  /** Binary frames, protocol violations, repeated abuse, expired auth, hello timeout. */
  POLICY: 1008,
  /** An inbound message over the size limit. */
  TOO_BIG: 1009,
  /** The server is restarting: reconnect elsewhere with jittered backoff. */
  RESTARTING: 1012,
  /** The server is overloaded (socket cap reached): back off. */
  OVERLOADED: 1013,
  /** The client could not keep up (outbound buffer over its limit): reconnect and resume. */
  TOO_SLOW: 4009,
} as const
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode]
