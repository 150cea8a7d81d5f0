/**
 * The signed-in account of this browser: tokens in localStorage (shared by
 * every tab), refreshed under a Web Lock so two tabs never spend one refresh
 * token twice (that would end the login), and the SDK client built on them.
 */
import { TaskSyncClient, indexedDbStorage } from 'tasksync/client'

export type Role = 'owner' | 'admin' | 'member' | 'viewer'
export interface User {
  id: string
  orgId: string
  email: string
  displayName: string
  role: Role
}
export interface Session {
  accessToken: string
  refreshToken: string
  /** ms since the epoch */
  expiresAt: number
  user: User
  organization: { id: string; name: string }
  device: { id: string }
}

const KEY = 'tasksync.session'
const DEVICE_KEY = (userId: string) => `tasksync.device.${userId}`
const origin = () => location.origin

/** Why a session ended without the person asking (shown on the sign-in page). */
export let endedBecause: string | null = null

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message)
  }
}

export function readSession(): Session | null {
  try {
    const raw = localStorage.getItem(KEY)
    return raw ? (JSON.parse(raw) as Session) : null
  } catch {
    return null
  }
}

function store(answer: { accessToken: string; refreshToken: string; expiresIn: number; user: User; organization: Session['organization']; device: { id: string } }): Session {
  const s: Session = {
    accessToken: answer.accessToken,
    refreshToken: answer.refreshToken,
    expiresAt: Date.now() + answer.expiresIn * 1000,
    user: answer.user,
    organization: answer.organization,
    device: { id: answer.device.id },
  }
  localStorage.setItem(KEY, JSON.stringify(s))
  localStorage.setItem(DEVICE_KEY(s.user.id), s.device.id)
  return s
}

async function post<T>(path: string, body: unknown): Promise<T> {
  const res = await fetch(origin() + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  const text = await res.text()
  const parsed = text ? JSON.parse(text) : undefined
  if (!res.ok) throw new HttpError(res.status, parsed?.error?.code ?? 'internal', parsed?.error?.message ?? `${path} answered ${res.status}`)
  return parsed as T
}

const deviceName = () => `${navigator.userAgent.includes('Chrome') ? 'Chrome' : 'Browser'} on ${navigator.platform || 'the web'}`

export async function signIn(email: string, password: string): Promise<Session> {
  // The same device as the last login of this account in this browser: the SDK's stored clientId is bound to it.
  const known = Object.keys(localStorage).find((k) => k.startsWith('tasksync.device.') && localStorage.getItem(`tasksync.email.${k.slice(16)}`) === email.toLowerCase())
  const id = known ? localStorage.getItem(known) ?? undefined : undefined
  const s = store(await post('/api/auth/login', { email, password, device: { ...(id ? { id } : {}), name: deviceName(), platform: 'web' } }))
  localStorage.setItem(`tasksync.email.${s.user.id}`, s.user.email.toLowerCase())
  endedBecause = null
  return s
}

export async function register(input: { orgName: string; email: string; password: string; displayName: string; demo: boolean }): Promise<Session> {
  const s = store(await post('/api/auth/register', { ...input, device: { name: deviceName(), platform: 'web' } }))
  localStorage.setItem(`tasksync.email.${s.user.id}`, s.user.email.toLowerCase())
  endedBecause = null
  return s
}

type Listener = () => void
const listeners = new Set<Listener>()
/** Called when the session of this browser ends (here or in another tab). */
export function onSessionChange(fn: Listener): () => void {
  listeners.add(fn)
  return () => listeners.delete(fn)
}
addEventListener('storage', (e) => {
  if (e.key === KEY && !e.newValue) for (const l of [...listeners]) l()
})

function ended(reason: string | null): void {
  localStorage.removeItem(KEY)
  endedBecause = reason
  for (const l of [...listeners]) l()
}

/** Signs out: ends the login on the server (best effort) and forgets it here. */
export async function signOut(): Promise<void> {
  const s = readSession()
  ended(null)
  if (s) await post('/api/auth/logout', { refreshToken: s.refreshToken }).catch(() => {})
}

const FRESH_MS = 60_000

/**
 * An access token other than `avoid` (one found refused): the stored one while
 * it is fresh, else a refresh. A refused refresh ends the session (the account
 * was removed, the device revoked, or the login ended elsewhere).
 */
async function tokenOtherThan(avoid: string | null): Promise<string> {
  const usable = (s: Session | null) => s && s.accessToken !== avoid && s.expiresAt - Date.now() > FRESH_MS
  const now = readSession()
  if (!now) throw new HttpError(401, 'unauthorized', 'signed out')
  if (usable(now)) return now.accessToken
  const refresh = async () => {
    // Another tab may have refreshed while this one waited for the lock.
    const s = readSession()
    if (!s) throw new HttpError(401, 'unauthorized', 'signed out')
    if (usable(s)) return s.accessToken
    try {
      return store(await post<Parameters<typeof store>[0]>('/api/auth/refresh', { refreshToken: s.refreshToken })).accessToken
    } catch (err) {
      if (err instanceof HttpError && err.status === 401) ended('Your session ended: the server signed you out (account removed, device revoked, or signed out elsewhere).')
      throw err
    }
  }
  return navigator.locks ? navigator.locks.request('tasksync-refresh', refresh) : refresh()
}

/** The last token the SDK got: it asks again only when that one expires or was refused. */
let sdkToken: string | null = null
const tokenForSdk = async () => (sdkToken = await tokenOtherThan(sdkToken))

/** A REST call with the session's token (renewed once when refused). */
export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  let refused: string | null = null
  for (let attempt = 0; ; attempt++) {
    const token = await tokenOtherThan(refused)
    refused = token
    const res = await fetch(origin() + path, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    })
    if (res.status === 401 && attempt === 0) continue
    if (res.status === 204) return undefined as T
    const text = await res.text()
    const parsed = text ? JSON.parse(text) : undefined
    if (!res.ok) throw new HttpError(res.status, parsed?.error?.code ?? 'internal', parsed?.error?.message ?? `${method} ${path} answered ${res.status}`)
    return parsed as T
  }
}

/** The SDK client of this session: its offline queue and tasks live in IndexedDB, one database per account. */
export function makeClient(s: Session): TaskSyncClient {
  return new TaskSyncClient({
    url: origin(),
    getAccessToken: tokenForSdk,
    storage: indexedDbStorage(`tasksync-${s.user.id}`),
    backoff: { baseMs: 300, maxMs: 5000 },
  })
}
