/**
 * The one error vocabulary of tasksync (PROTOCOL.md section 3). Every failure,
 * REST or WebSocket, carries one of these codes; HTTP status is derived here once.
 */
export const ERROR_STATUS = {
  bad_request: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  rev_too_old: 409,
  already_exists: 409,
  task_deleted: 410,
  too_large: 413,
  invalid_op: 422,
  rate_limited: 429,
  internal: 500,
  unavailable: 503,
} as const

export type ErrorCode = keyof typeof ERROR_STATUS

export function isErrorCode(x: unknown): x is ErrorCode {
  return typeof x === 'string' && Object.prototype.hasOwnProperty.call(ERROR_STATUS, x)
}

/** An error a client caused or must react to; anything else is `internal`. */
export class TaskSyncError extends Error {
  readonly code: ErrorCode
  readonly details?: unknown
  constructor(code: ErrorCode, message: string, details?: unknown) {
    super(message)
    this.name = 'TaskSyncError'
    this.code = code
    this.details = details
  }
  get status(): number {
    return ERROR_STATUS[this.code]
  }
}

/** Wire shape of a REST error body. */
export interface ErrorBody {
  error: { code: ErrorCode; message: string; details?: unknown }
}
