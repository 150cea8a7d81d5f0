/**
 * The one error vocabulary of tasksync (PROTOCOL.md section 3): every failure,
 * REST or WebSocket, carries one of these codes, and its HTTP status is derived
 * here once. It lives in the domain, the innermost layer, because the op type's
 * own refusal (`invalid_op`) is one of them; `protocol` re-exports it for the wire.
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

/**
 * The one error the op type throws: a TaskSyncError with code `invalid_op`, so
 * transports map it to 422 without knowing the domain. `path` names the offending
 * part of an op (or initial content, or patch).
 */
export class InvalidOpError extends TaskSyncError {
  /** Where the problem is, e.g. `title`, `tags.add[2]`, `customFields.estimate`. */
  readonly path: string
  constructor(path: string, problem: string) {
    super('invalid_op', `${path}: ${problem}`, { path })
    this.name = 'InvalidOpError'
    this.path = path
  }
}

/** Throws an InvalidOpError; typed `never` so callers can use it in expressions. */
export function fail(path: string, problem: string): never {
  throw new InvalidOpError(path, problem)
}
