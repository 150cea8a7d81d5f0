/**
 * Starts the real app for a test: a fresh PostgreSQL database (or a shared one),
 * real Redis under a unique prefix (or the in-process bus), listening on a free
 * port, closed at teardown. Two instances share state by passing the first one's
 * databaseUrl and redisPrefix to the second.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomUUID } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../../src/app.js'
import { loadConfig } from '../../src/config/index.js'
import { createTestDatabaseUrl, testRedisPrefix, TEST_REDIS_URL } from './db.js'
import type { Teardown } from './teardown.js'

/** The JWT secret every test instance shares, so two instances verify each other's tokens. */
export const TEST_JWT_SECRET = 'test-secret-test-secret-test-secret-0123456789'

export interface TestAppOptions {
  /** Use this database instead of creating one (a second instance of the same deployment). */
  databaseUrl?: string
  /** Redis prefix to share with another instance; a unique one by default. */
  redisPrefix?: string
  /** Real Redis (default) or the in-process bus. */
  redis?: boolean
  /** Extra or overriding environment variables (strings, as in a real environment). */
  env?: Record<string, string>
  /** Listen on this port (e.g. the port of an instance closed before: clients reconnect to it); a free one by default. */
  port?: number
}

export interface TestApp {
  app: FastifyInstance
  /** http://127.0.0.1:PORT */
  url: string
  databaseUrl: string
  redisPrefix: string
  close(): Promise<void>
}

export async function startTestApp(t: Teardown, opts: TestAppOptions = {}): Promise<TestApp> {
  const databaseUrl = opts.databaseUrl ?? (await createTestDatabaseUrl(t))
  const redisPrefix = opts.redisPrefix ?? testRedisPrefix()
  const dataDir = mkdtempSync(join(tmpdir(), 'tasksync-test-'))
  const env: Record<string, string> = {
    NODE_ENV: 'test',
    HOST: '127.0.0.1',
    PORT: '0',
    DATABASE_URL: databaseUrl,
    DATABASE_POOL_SIZE: '5',
    REDIS_PREFIX: redisPrefix,
    JWT_SECRET: TEST_JWT_SECRET,
    DATA_DIR: dataDir,
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    INSTANCE_ID: `test-${randomUUID().slice(0, 8)}`,
    // Tests register many users from one address; the rate-limit test lowers this itself.
    AUTH_RATE_LIMIT_PER_MIN: '100000',
    // The cheapest password hash the config allows: tests hash hundreds of passwords.
    SCRYPT_LOG_N: '10',
    ...(opts.redis === false ? {} : { REDIS_URL: TEST_REDIS_URL }),
    ...opts.env,
  }
  const app = await buildApp(loadConfig(env))
  let closed: Promise<void> | undefined
  const close = () =>
    (closed ??= (async () => {
      await app.close()
      rmSync(dataDir, { recursive: true, force: true })
    })())
  t.teardown(close)
  await app.listen({ host: '127.0.0.1', port: opts.port ?? 0 })
  const address = app.server.address()
  const port = typeof address === 'object' && address ? address.port : 0
  return { app, url: `http://127.0.0.1:${port}`, databaseUrl, redisPrefix, close }
}

export interface ApiResponse<T = any> {
  status: number
  body: T
  headers: Headers
}

export interface Api {
  get<T = any>(path: string): Promise<ApiResponse<T>>
  post<T = any>(path: string, body?: unknown): Promise<ApiResponse<T>>
  patch<T = any>(path: string, body?: unknown, headers?: Record<string, string>): Promise<ApiResponse<T>>
  delete<T = any>(path: string): Promise<ApiResponse<T>>
  request<T = any>(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<ApiResponse<T>>
}

/** A tiny JSON client: `api(url, token).get('/api/users/me')` → `{status, body}` (body null when empty). */
export function api(url: string, token?: string): Api {
  const request = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const res = await fetch(url + path, {
      method,
      headers: {
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...headers,
      },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    })
    const text = await res.text()
    let parsed: unknown = null
    if (text) {
      try {
        parsed = JSON.parse(text)
      } catch {
        parsed = text
      }
    }
    return { status: res.status, body: parsed as any, headers: res.headers }
  }
  return {
    request,
    get: (path) => request('GET', path),
    post: (path, body) => request('POST', path, body ?? {}),
    patch: (path, body, headers) => request('PATCH', path, body ?? {}, headers),
    delete: (path) => request('DELETE', path),
  }
}

export interface Session {
  accessToken: string
  refreshToken: string
  expiresIn: number
  user: { id: string; email: string; displayName: string; role: 'owner' | 'admin' | 'member' | 'viewer'; orgId: string }
  organization: { id: string; name: string }
  device: { id: string; name: string; platform: string; userId: string }
}

/** Registers a new organization and its owner with a unique email; returns the session (throws on failure). */
export async function registerOwner(
  url: string,
  overrides: Partial<{ orgName: string; email: string; password: string; displayName: string; device: object }> = {},
): Promise<Session & { password: string }> {
  const unique = randomUUID().slice(0, 12)
  const input = {
    orgName: `Org ${unique}`,
    email: `owner-${unique}@example.test`,
    password: 'correct horse battery staple',
    displayName: `Owner ${unique}`,
    ...overrides,
  }
  const res = await api(url).post('/api/auth/register', input)
  if (res.status !== 201) throw new Error(`register failed: ${res.status} ${JSON.stringify(res.body)}`)
  return { ...(res.body as Session), password: input.password }
}

/** As an admin or owner, creates a user with a role and logs them in; returns their session. */
export async function addMember(
  url: string,
  adminToken: string,
  role: 'owner' | 'admin' | 'member' | 'viewer' = 'member',
): Promise<Session & { password: string }> {
  const unique = randomUUID().slice(0, 12)
  const password = 'another long passphrase'
  const email = `${role}-${unique}@example.test`
  const created = await api(url, adminToken).post('/api/users', { email, password, displayName: `${role} ${unique}`, role })
  if (created.status !== 201) throw new Error(`create user failed: ${created.status} ${JSON.stringify(created.body)}`)
  const res = await api(url).post('/api/auth/login', { email, password, device: { name: 'test device', platform: 'test' } })
  if (res.status !== 200) throw new Error(`login failed: ${res.status} ${JSON.stringify(res.body)}`)
  return { ...(res.body as Session), password }
}
