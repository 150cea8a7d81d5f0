/**
 * The error vocabulary on the wire (PROTOCOL.md section 3). The codes, their
 * HTTP status and the error class are defined once in domain/errors.ts.
 */
import type { ErrorCode } from '../domain/errors.js'

export { ERROR_STATUS, TaskSyncError, isErrorCode, type ErrorCode } from '../domain/errors.js'

/** Wire shape of a REST error body. */
export interface ErrorBody {
  error: { code: ErrorCode; message: string; details?: unknown }
}
