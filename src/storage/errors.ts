/**
 * Recognises driver errors (postgres.js, PGlite, wrapped by drizzle) by what they
 * mean for a caller: storage is unreachable (answer `unavailable`, retry), the
 * input was not valid for a column (a client's mistake), or a key already exists.
 */

interface DriverError {
  code?: unknown
  message?: unknown
  cause?: unknown
}

/** postgres.js and Node socket codes that mean "no usable connection". */
const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
  'CONNECT_TIMEOUT',
  'CONNECTION_CLOSED',
  'CONNECTION_ENDED',
  'CONNECTION_DESTROYED',
])

/** SQLSTATEs after which a retry may succeed: shutdown, too many connections, serialization. */
const TRANSIENT_STATES = new Set(['57P01', '57P02', '57P03', '53300', '40001', '40P01'])

/** The error and every `cause` under it (drizzle wraps driver errors). */
function* chain(err: unknown): Generator<DriverError> {
  for (let e = err, depth = 0; e && typeof e === 'object' && depth < 8; e = (e as DriverError).cause, depth++) {
    yield e as DriverError
  }
}

function sqlState(e: DriverError): string | undefined {
  return typeof e.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code) ? e.code : undefined
}

/** True when the database could not be reached or asked for a retry: nothing was committed. */
export function isStorageUnavailable(err: unknown): boolean {
  for (const e of chain(err)) {
    if (typeof e.code === 'string' && CONNECTION_CODES.has(e.code)) return true
    const state = sqlState(e)
    if (state && (state.startsWith('08') || TRANSIENT_STATES.has(state))) return true
    if (typeof e.message === 'string' && /PGlite is closed/i.test(e.message)) return true
  }
  return false
}

/** True for SQLSTATE class 22 (a value that does not fit its column: bad uuid, bad date…). */
export function isDataException(err: unknown): boolean {
  for (const e of chain(err)) if (sqlState(e)?.startsWith('22')) return true
  return false
}

/** True for a unique-constraint violation (SQLSTATE 23505). */
export function isUniqueViolation(err: unknown): boolean {
  for (const e of chain(err)) if (sqlState(e) === '23505') return true
  return false
}
