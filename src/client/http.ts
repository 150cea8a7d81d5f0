/**
 * The few REST calls the SDK makes (auth, op log, comments, sync), through the
 * caller's `fetch`. Failures become TaskSyncError with the protocol's codes.
 */
import { ERROR_STATUS, TaskSyncError, isErrorCode, type ErrorCode } from '../protocol/errors.js'

export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>

const BY_STATUS: Record<number, ErrorCode> = {
  400: 'bad_request',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  409: 'rev_too_old',
  410: 'task_deleted',
  413: 'too_large',
  422: 'invalid_op',
  429: 'rate_limited',
  503: 'unavailable',
}

/** An error answered by the server (or the network), with the HTTP status seen. */
export class RestError extends TaskSyncError {
  constructor(code: ErrorCode, message: string, readonly httpStatus: number) {
    super(code, message)
    this.name = 'RestError'
  }
}

export class RestClient {
  constructor(
    private readonly baseUrl: string,
    private readonly fetchFn: FetchLike,
    private readonly token?: () => Promise<string>,
    /** Headers sent with every request (the device key of an identity provider's token). */
    private readonly extraHeaders?: () => Record<string, string>,
  ) {}

  /** Sends a JSON request; answers the parsed body (undefined for 204). */
  async request<T>(method: string, path: string, body?: unknown, opts: { auth?: boolean } = {}): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json', ...this.extraHeaders?.() }
    if (body !== undefined) headers['content-type'] = 'application/json'
    if (opts.auth !== false && this.token) headers.authorization = `Bearer ${await this.token()}`
    let res: Response
    try {
      res = await this.fetchFn(this.baseUrl + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      })
    } catch (err) {
      throw new RestError('unavailable', `network error on ${method} ${path}: ${(err as Error).message}`, 0)
    }
    if (res.status === 204) return undefined as T
    const text = await res.text()
    let parsed: unknown
    try {
      parsed = text ? JSON.parse(text) : undefined
    } catch {
      parsed = undefined
    }
    if (res.ok) return parsed as T
    const e = (parsed as { error?: { code?: unknown; message?: unknown } } | undefined)?.error
    const code: ErrorCode = isErrorCode(e?.code) ? e.code : (BY_STATUS[res.status] ?? (res.status >= 500 ? 'internal' : 'bad_request'))
    const message = typeof e?.message === 'string' ? e.message : `${method} ${path} answered ${res.status}`
    throw new RestError(code, message, res.status)
  }
}

/** True when an error says to try again later rather than give up. */
export function isTransient(err: unknown): boolean {
  if (!(err instanceof TaskSyncError)) return true
  return err.code === 'unavailable' || err.code === 'internal' || err.code === 'rate_limited'
}

export { ERROR_STATUS }
