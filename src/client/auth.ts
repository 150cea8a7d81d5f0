/**
 * Access tokens for the socket and REST calls: logs in with credentials (and
 * refreshes with the rotating refresh token), or asks the app's
 * `getAccessToken`. Tokens are renewed before they expire; the client then
 * sends them in-band (`auth`) on the open socket.
 */
import { RestClient, type FetchLike } from './http.js'
import { TaskSyncError } from '../protocol/errors.js'

/** Email and password login; `device` names this install (its id is kept in storage). */
export interface Credentials {
  email: string
  password: string
  device?: { id?: string; name?: string; platform?: string }
}

interface AuthAnswer {
  accessToken: string
  refreshToken: string
  expiresIn: number
  user?: { id?: string }
  organization?: { id?: string }
  device?: { id?: string }
}

export interface AuthOptions {
  baseUrl: string
  fetch: FetchLike
  credentials?: Credentials
  getAccessToken?: () => Promise<string>
  /** Device id remembered from an earlier login, reused so the clientId stays bound to it. */
  deviceId?: string
}

/** Decodes a JWT's payload without verifying it (the server verifies). */
export function jwtClaims(token: string): Record<string, unknown> {
  const part = token.split('.')[1]
  if (!part) return {}
  try {
    const b64 = part.replace(/-/g, '+').replace(/_/g, '/')
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
    const bytes: number[] = []
    let buf = 0
    let bits = 0
    for (const ch of b64) {
      const v = alphabet.indexOf(ch)
      if (v < 0) continue
      buf = (buf << 6) | v
      bits += 6
      if (bits >= 8) {
        bits -= 8
        bytes.push((buf >> bits) & 0xff)
      }
    }
    // UTF-8 decode without TextDecoder (missing on some React Native engines).
    const json = decodeURIComponent(bytes.map((b) => '%' + b.toString(16).padStart(2, '0')).join(''))
    return JSON.parse(json) as Record<string, unknown>
  } catch {
    return {}
  }
}

const str = (x: unknown): string | undefined => (typeof x === 'string' ? x : undefined)

export class AuthSession {
  private access: string | null = null
  private expiresAt = 0
  private lifetime = 0
  private refreshToken: string | null = null
  private pending: Promise<string> | null = null
  private timer: ReturnType<typeof setTimeout> | null = null
  private closed = false
  private readonly rest: RestClient
  /** The signed-in user and device, once known. */
  userId: string | undefined
  deviceId: string | undefined
  /** Called with each token obtained by a scheduled renewal. */
  onRenewed: ((token: string) => void) | null = null

  constructor(private readonly opts: AuthOptions) {
    if (!opts.credentials && !opts.getAccessToken) throw new TypeError('TaskSyncClient: give credentials or getAccessToken')
    this.rest = new RestClient(opts.baseUrl, opts.fetch)
    this.deviceId = opts.credentials?.device?.id ?? opts.deviceId
  }

  /** A token that is not about to expire (30 s, or a fifth of a short lifetime, left); `force` obtains a new one. */
  token(force = false): Promise<string> {
    const margin = Math.min(30_000, this.lifetime / 5)
    if (!force && this.access && this.expiresAt - Date.now() > margin) return Promise.resolve(this.access)
    return (this.pending ??= this.obtain().finally(() => (this.pending = null)))
  }

  /** Stops the renewal timer. */
  close(): void {
    this.closed = true
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
  }

  private async obtain(): Promise<string> {
    if (this.opts.getAccessToken) {
      const token = await this.opts.getAccessToken()
      const claims = jwtClaims(token)
      const exp = typeof claims.exp === 'number' ? claims.exp * 1000 : Date.now() + 15 * 60_000
      this.adopt(token, exp, claims)
      return token
    }
    let answer: AuthAnswer | null = null
    if (this.refreshToken) {
      try {
        answer = await this.rest.request<AuthAnswer>('POST', '/api/auth/refresh', { refreshToken: this.refreshToken })
      } catch (err) {
        // A spent or revoked refresh token: log in again. Anything else is passed up.
        if (!(err instanceof TaskSyncError) || err.code !== 'unauthorized') throw err
      }
    }
    answer ??= await this.login()
    this.refreshToken = answer.refreshToken
    this.userId = answer.user?.id ?? this.userId
    this.deviceId = answer.device?.id ?? this.deviceId
    this.adopt(answer.accessToken, Date.now() + answer.expiresIn * 1000, jwtClaims(answer.accessToken))
    return answer.accessToken
  }

  private login(): Promise<AuthAnswer> {
    const c = this.opts.credentials!
    const device = {
      ...(this.deviceId ? { id: this.deviceId } : {}),
      name: c.device?.name ?? 'tasksync client',
      platform: c.device?.platform ?? 'unknown',
    }
    return this.rest.request<AuthAnswer>('POST', '/api/auth/login', { email: c.email, password: c.password, device })
  }

  private adopt(token: string, expiresAt: number, claims: Record<string, unknown>): void {
    this.access = token
    this.expiresAt = expiresAt
    this.lifetime = Math.max(0, expiresAt - Date.now())
    // An identity provider's `sub` is not the tasksync user id: the client asks the server for that.
    if (claims.iss === undefined || claims.iss === 'tasksync') this.userId ??= str(claims.sub) ?? str(claims.userId) ?? str(claims.uid)
    this.deviceId ??= str(claims.deviceId) ?? str(claims.did) ?? str(claims.dev)
    this.schedule()
  }

  /** Renews at 80 % of the lifetime, so an open socket never runs on an expired token. */
  private schedule(): void {
    if (this.timer) clearTimeout(this.timer)
    if (this.closed) return
    const delay = Math.max(1_000, (this.expiresAt - Date.now()) * 0.8)
    this.timer = setTimeout(() => {
      this.timer = null
      this.token(true).then(
        (t) => this.onRenewed?.(t),
        () => {
          // Server unreachable: try again shortly; the socket will reconnect with a fresh token anyway.
          if (!this.closed) this.timer = setTimeout(() => this.schedule(), 10_000)
        },
      )
    }, Math.min(delay, 2 ** 31 - 1))
  }
}
