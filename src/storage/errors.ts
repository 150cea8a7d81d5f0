/**
 * The one reading of database errors (postgres.js, PGlite, wrapped by drizzle),
 * one rule each, and what each means for a client:
 *
 * - `unreachable`: no usable connection, the server shutting down or out of
 *   resources (SQLSTATE classes 08, 53, 57, 58; driver connection codes; a closed
 *   PGlite). Nothing was acked: the client retries (`unavailable`).
 * - `contention`: a serialization failure or deadlock (40001, 40P01): another
 *   transaction won. The sequencer reloads and retries; elsewhere `unavailable`.
 * - `duplicate`: a unique violation (23505). In a commit it is a lost race (a
 *   racing twin wrote first); elsewhere an id already taken (`already_exists`).
 * - `bad_value`: SQLSTATE class 22, a value that does not fit its column (`bad_request`).
 */
import { TaskSyncError } from '../protocol/errors.js'

export type StorageFault = 'unreachable' | 'contention' | 'duplicate' | 'bad_value'

interface DriverError {
  code?: unknown
  message?: unknown
  cause?: unknown
}

/** postgres.js and Node socket codes that mean "no usable connection". */
const CONNECTION_CODE = /^(ECONN|ETIMEDOUT$|EPIPE$|ENOTFOUND$|EAI_AGAIN$|CONNECT_TIMEOUT$|CONNECTION_)/

/** The error and every `cause` under it (drizzle wraps driver errors). */
function* chain(err: unknown): Generator<DriverError> {
  for (let e = err, depth = 0; e && typeof e === 'object' && depth < 8; e = (e as DriverError).cause, depth++) {
    yield e as DriverError
  }
}

/** What a thrown value says about storage, or null when it is no database error (a bug, or ours). */
export function storageFault(err: unknown): StorageFault | null {
  if (err instanceof TaskSyncError) return null
  for (const e of chain(err)) {
    const code = typeof e.code === 'string' ? e.code : undefined
    if (code !== undefined && CONNECTION_CODE.test(code)) return 'unreachable'
    if (code !== undefined && /^[0-9A-Z]{5}$/.test(code)) {
      if (/^(08|53|57|58)/.test(code)) return 'unreachable'
      if (code === '40001' || code === '40P01') return 'contention'
      if (code === '23505') return 'duplicate'
      if (code.startsWith('22')) return 'bad_value'
    }
    if (typeof e.message === 'string' && /PGlite is closed/i.test(e.message)) return 'unreachable'
  }
  return null
}

/** Another commit won (a racing twin's unique key, a serialization failure, a deadlock): reload and retry. */
export const isLostRace = (err: unknown): boolean => {
  const fault = storageFault(err)
  return fault === 'contention' || fault === 'duplicate'
}

/** A unique violation: the id (or key) is taken. */
export const isUniqueViolation = (err: unknown): boolean => storageFault(err) === 'duplicate'

/** The one answer for "storage failed, nothing was acked". */
export function storageUnavailable(): TaskSyncError {
  return new TaskSyncError('unavailable', 'storage is unavailable; nothing was committed, retry (a resend with the same clientId and seq is safe)')
}

interface Logger {
  warn(obj: unknown, msg?: string): void
  error(obj: unknown, msg?: string): void
}

/** The one answer for "a value does not fit its column": the request's fault, nothing was committed. */
export function storageBadValue(): TaskSyncError {
  return new TaskSyncError('bad_request', 'a value is not valid for its field (storage refused it); nothing was committed')
}

/**
 * A failure inside a mutation, as its caller answers it: our own errors pass
 * through; a value storage refuses (`bad_value`) is the client's `bad_request`,
 * never worth a retry; any other storage failure (after the caller's retries) is
 * `unavailable`, logged as a warning when storage was unreachable and as an error otherwise.
 */
export function asUnavailable(err: unknown, log?: Logger): TaskSyncError {
  if (err instanceof TaskSyncError) return err
  const fault = storageFault(err)
  if (fault === 'bad_value') {
    log?.warn({ err }, 'storage refused a value')
    return storageBadValue()
  }
  if (fault === 'unreachable') log?.warn({ err }, 'storage unavailable')
  else log?.error({ err }, 'unexpected storage error')
  return storageUnavailable()
}

/**
 * A failure as a transport (REST, WebSocket) answers it: ours keep their code,
 * a storage fault becomes its code (see the top of this file), anything else is
 * null (the transport logs it and answers `internal`).
 */
export function clientError(err: unknown, log?: Logger): TaskSyncError | null {
  if (err instanceof TaskSyncError) return err
  switch (storageFault(err)) {
    case 'unreachable':
    case 'contention':
      log?.warn({ err }, 'storage unavailable')
      return storageUnavailable()
    case 'duplicate':
      return new TaskSyncError('already_exists', 'an entity with this id already exists')
    case 'bad_value':
      return storageBadValue()
    default:
      return null
  }
}
