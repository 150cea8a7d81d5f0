/**
 * Authentication routes: register, login, refresh, logout, and the JWKS.
 * All but the JWKS are rate limited per client address (AUTH_RATE_LIMIT_PER_MIN);
 * login is also throttled per account (src/auth/login-throttle.ts).
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { TaskSyncError } from '../protocol/errors.js'
import { createOrganizationWithOwner, findUserByEmail } from '../storage/accounts.js'
import { resolveLoginDevice } from '../storage/devices.js'
import { decoyHash, hashPassword, verifyPassword } from '../auth/passwords.js'
import { builtinAuthOff, openSession, refreshSession } from '../auth/sessions.js'
import { revokeFamilyOf } from '../storage/refresh-tokens.js'
import { getOrganization, normalizeEmail } from '../storage/accounts.js'
import { loginThrottle } from '../auth/login-throttle.js'
import { activeDeviceOwner } from '../storage/principals.js'
import { RedisBus } from '../bus/redis.js'
import { fillDemoWorkspace } from '../storage/seed-data.js'
import { DeviceInput, DisplayName, Email, OrgName, Password, Session, errorResponses } from './schemas.js'

const RegisterBody = Type.Object(
  {
    orgName: OrgName,
    email: Email,
    password: Password,
    displayName: DisplayName,
    device: Type.Optional(DeviceInput),
    demo: Type.Optional(Type.Boolean({ description: 'Fill the new organization with a demo workspace: teammates, projects, tasks with history, due dates and comments' })),
  },
  { additionalProperties: false },
)
const LoginBody = Type.Object(
  { email: Email, password: Type.String({ minLength: 1, maxLength: 1024 }), device: DeviceInput },
  { additionalProperties: false },
)
const RefreshBody = Type.Object({ refreshToken: Type.String({ minLength: 1, maxLength: 200 }) }, { additionalProperties: false })

/** A JWK set; each key is documented as an open object (its members depend on the key type). */
const Jwks = Type.Object({ keys: Type.Array(Type.Record(Type.String(), Type.Unknown())) })

/** Failed logins of an account are counted over 15 minutes (a success resets them). */
const LOGIN_FAILURE_WINDOW_S = 900

const DEFAULT_DEVICE = { name: 'default', platform: 'unknown' }

const authRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const rateLimit = { max: app.config.AUTH_RATE_LIMIT_PER_MIN, timeWindow: 60_000 }
  // Checked before the body is even validated: the answer does not depend on it.
  const builtinOnly = async () => {
    if (!app.config.builtinAuth) throw builtinAuthOff()
  }
  const logN = app.config.SCRYPT_LOG_N
  const { db } = app.database
  const throttle = loginThrottle({
    maxFailures: app.config.LOGIN_ACCOUNT_MAX_FAILURES,
    lockMaxS: app.config.LOGIN_ACCOUNT_LOCK_MAX_S,
    windowS: LOGIN_FAILURE_WINDOW_S,
    redis: app.bus instanceof RedisBus ? app.bus.commands : undefined,
    prefix: app.config.REDIS_PREFIX,
  })

  app.post(
    '/api/auth/register',
    {
      config: { rateLimit },
      onRequest: builtinOnly,
      schema: { tags: ['auth'], summary: 'Create an organization and its owner, and log in (403 with AUTH_BUILTIN=false)', body: RegisterBody, response: { 201: Session, ...errorResponses(400, 403, 409, 429, 503) } },
    },
    async (request, reply) => {
      const { orgName, email, password, displayName, device, demo } = request.body
      const passwordHash = await hashPassword(password, logN)
      const { organization, user } = await createOrganizationWithOwner(db, { orgName, email, displayName, passwordHash })
      const dev = await resolveLoginDevice(db, organization.id, user.id, device ?? DEFAULT_DEVICE)
      if (demo) await fillDemoWorkspace(app.database, organization, { id: user.id, email: user.email, deviceId: dev.id }, { hashPassword: (p) => hashPassword(p, logN) })
      return reply.code(201).send(await openSession(app.sessions, user, organization, dev))
    },
  )

  app.post(
    '/api/auth/login',
    {
      config: { rateLimit },
      onRequest: builtinOnly,
      schema: { tags: ['auth'], summary: 'Log in on a device (registered on first use; 403 with AUTH_BUILTIN=false)', body: LoginBody, response: { 200: Session, ...errorResponses(400, 401, 403, 429, 503) } },
    },
    async (request, reply) => {
      const { email, password, device } = request.body
      const account = normalizeEmail(email)
      const user = await findUserByEmail(db, email)
      // The user's own live device is never locked out by someone else's guesses.
      const knownDevice = !!user && !!device.id && (await activeDeviceOwner(db, user.orgId, device.id)) === user.id
      const wait = knownDevice ? 0 : await throttle.lockedFor(account)
      if (wait > 0) {
        throw new TaskSyncError('rate_limited', `too many failed logins for this account, retry in ${wait} s`, { retryAfterS: wait })
      }
      // An unknown email costs the same hash as a wrong password: timing tells nothing.
      const ok = await verifyPassword(password, user?.passwordHash ?? (await decoyHash(logN)))
      if (!user || !ok) {
        await throttle.failed(account)
        throw new TaskSyncError('unauthorized', 'wrong email or password')
      }
      await throttle.succeeded(account)
      if (user.deactivated) throw new TaskSyncError('unauthorized', 'this account was removed from its organization')
      const { passwordHash: _, deactivated: __, ...profile } = user
      const organization = await getOrganization(db, user.orgId)
      if (!organization) throw new TaskSyncError('unauthorized', 'wrong email or password')
      const dev = await resolveLoginDevice(db, user.orgId, user.id, device)
      return openSession(app.sessions, profile, organization, dev)
    },
  )

  app.post(
    '/api/auth/refresh',
    {
      config: { rateLimit },
      onRequest: builtinOnly,
      schema: { tags: ['auth'], summary: 'Spend a refresh token for a new token pair (403 with AUTH_BUILTIN=false)', body: RefreshBody, response: { 200: Session, ...errorResponses(400, 401, 403, 429, 503) } },
    },
    async (request) => refreshSession(app.sessions, request.body.refreshToken),
  )

  app.post(
    '/api/auth/logout',
    {
      config: { rateLimit },
      schema: { tags: ['auth'], summary: 'End the login this refresh token belongs to', body: RefreshBody, response: { 204: Type.Null(), ...errorResponses(400, 401, 429, 503) } },
    },
    async (request, reply) => {
      if (!(await revokeFamilyOf(db, request.body.refreshToken))) throw new TaskSyncError('unauthorized', 'unknown refresh token')
      return reply.code(204).send(null)
    },
  )

  app.get(
    '/.well-known/jwks.json',
    { schema: { tags: ['auth'], summary: 'Public keys that verify access tokens ({keys: []} when a shared secret signs them)', response: { 200: Jwks } } },
    async () => app.tokens.jwks ?? { keys: [] },
  )
}

export default authRoutes
