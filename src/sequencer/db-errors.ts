/**
 * How the sequencer reads a database error: a lost race worth retrying, or the
 * storage being unreachable (answered `unavailable`; nothing was acked).
 */
import { TaskSyncError } from '../protocol/errors.js'

/** The SQLSTATE (or driver code) of an error, looking through wrapper causes. */
export function errorCode(err: unknown): string | undefined {
  for (let e = err as { code?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 5; depth++) {
    if (typeof e.code === 'string') return e.code
    e = e.cause as typeof e
  }
  return undefined
}

/** Unique violation, deadlock or serialization failure: another commit won; reload and retry. */
export function isLostRace(err: unknown): boolean {
  const code = errorCode(err)
  return code === '23505' || code === '40P01' || code === '40001'
}

/** Connection-level failures (not a bug in a statement). */
export function isConnectionError(err: unknown): boolean {
  const code = errorCode(err) ?? ''
  return /^(08|53|57|58)/.test(code) || /^(ECONN|ETIMEDOUT|EPIPE|ENOTFOUND|EAI_AGAIN|CONNECT|CONNECTION_)/.test(code)
}

/**
 * What a storage failure becomes for the client: `unavailable` (retry; a resend
 * with the same clientId and seq is safe). A TaskSyncError passes through unchanged.
 */
export function storageError(err: unknown, logger?: { warn(o: unknown, m?: string): void; error(o: unknown, m?: string): void }): TaskSyncError {
  if (err instanceof TaskSyncError) return err
  if (isConnectionError(err)) logger?.warn({ err }, 'storage unavailable')
  else logger?.error({ err }, 'unexpected storage error')
  return new TaskSyncError('unavailable', 'storage is unavailable; retry (a resend with the same clientId and seq is safe)')
}
