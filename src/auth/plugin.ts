/**
 * Who is asking. Decorates:
 * - `app.tokens`: sign and verify access tokens (verification also rejects
 *   revoked devices), the public JWKS, and device-revocation notifications;
 * - `app.authenticate`: a hook that requires a Bearer access token and sets
 *   `request.principal`;
 * - `app.sessions`: what the auth routes need to open and refresh sessions.
 */
import fp from 'fastify-plugin'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { JWK } from 'jose'
import type { Principal } from './principal.js'
import { TaskSyncError } from '../protocol/errors.js'
import { loadSigningKeys, signAccessToken, verifyAccessToken } from './tokens.js'
import { DeviceRevocations } from './revocations.js'
import { revokeDevice } from '../storage/devices.js'
import type { SessionDeps } from './sessions.js'
import { ExternalTokens, unverifiedIssuer } from './external.js'

/** Bus channel on which every instance hears of revoked devices. */
export const DEVICE_REVOKED_CHANNEL = 'auth:device-revoked'

export interface Tokens {
  /**
   * Verifies an access token (tasksync's own, or the identity provider's when
   * AUTH_JWKS_URL is set) and that its device and user are live; throws `unauthorized`.
   * `deviceKey` names the install an identity provider's token is used on (X-Device-Key,
   * `device_key`); tasksync's own tokens name their device themselves and ignore it.
   */
  verifyAccess(token: string, deviceKey?: string): Promise<{ principal: Principal; expiresAt: Date; deviceKey?: string }>
  signAccess(principal: Principal): Promise<{ token: string; expiresAt: Date }>
  /** The public keys when an asymmetric key signs, else null. */
  jwks: { keys: JWK[] } | null
  /** Revokes a device here and tells every instance (its sockets should close). */
  revokeDevice(orgId: string, deviceId: string): Promise<void>
  /** Called for every revoked device, whichever instance revoked it. */
  onDeviceRevoked(listener: (orgId: string, deviceId: string) => void): void
  /**
   * Tells every instance that a user was removed: tokens naming them are refused at
   * once, even on a device whose revocation has not happened yet.
   */
  userRemoved(orgId: string, userId: string): Promise<void>
}

declare module 'fastify' {
  interface FastifyInstance {
    tokens: Tokens
    sessions: SessionDeps
    authenticate: (request: FastifyRequest, reply: FastifyReply) => Promise<void>
  }
  interface FastifyRequest {
    /** Set by `app.authenticate`; only read it on routes that use that hook. */
    principal: Principal
  }
}

/** Extracts the token of `Authorization: Bearer <token>`; null when absent or of another scheme. */
export function bearerToken(header: string | undefined): string | null {
  const match = header?.match(/^Bearer\s+(\S+)\s*$/i)
  return match ? match[1] : null
}

export default fp(
  async (app) => {
    const { config, database, bus } = app
    const keys = await loadSigningKeys(config)
    const revocations = new DeviceRevocations(database.db)
    const listeners: Array<(orgId: string, deviceId: string) => void> = []

    const announce = (orgId: string, deviceId: string) => {
      revocations.forget(orgId, deviceId)
      for (const listener of listeners) listener(orgId, deviceId)
    }
    // One channel for both notices: `deviceId` (a revoked device) or `userId` (a removed user).
    const unsubscribe = await bus.subscribe(DEVICE_REVOKED_CHANNEL, (payload) => {
      try {
        const { orgId, deviceId, userId, from } = JSON.parse(payload) as { orgId: string; deviceId?: string; userId?: string; from: string }
        if (from === app.instanceId) return
        if (deviceId) announce(orgId, deviceId)
        else if (userId) revocations.forgetUser(orgId, userId)
      } catch {
        app.log.warn('malformed device revocation notice')
      }
    })
    const notify = (notice: { orgId: string; deviceId?: string; userId?: string }) =>
      bus.publish(DEVICE_REVOKED_CHANNEL, JSON.stringify({ ...notice, from: app.instanceId })).catch((err) => {
        app.log.warn({ err }, 'could not announce a revocation; other instances apply it within a second')
      })
    app.addHook('onClose', () => unsubscribe())

    const external = config.externalAuth ? new ExternalTokens(config.externalAuth, database.db, config.JWT_CLOCK_SKEW_S) : null
    /** The identity provider's tokens go to its verifier (chosen by `iss`, then verified); all others are tasksync's own. */
    const verifySigned = async (token: string, deviceKey: string | undefined) => {
      if (external && unverifiedIssuer(token) === external.issuer) return { ...(await external.verify(token, deviceKey)), deviceKey }
      if (!config.builtinAuth) throw new TaskSyncError('unauthorized', 'invalid access token: this server accepts only its identity provider\'s tokens')
      return verifyAccessToken(keys, token, config.JWT_CLOCK_SKEW_S)
    }

    const tokens: Tokens = {
      async verifyAccess(token, deviceKey) {
        const verified = await verifySigned(token, deviceKey)
        const { orgId, deviceId, userId } = verified.principal
        const owner = await revocations.ownerOf(orgId, deviceId)
        if (owner === null) throw new TaskSyncError('unauthorized', 'this device has been revoked')
        // A signed token whose user is not its device's: forged claims or a stale identity.
        if (owner !== userId) throw new TaskSyncError('unauthorized', 'invalid access token')
        return verified
      },
      signAccess: (principal) => signAccessToken(keys, principal, config.ACCESS_TOKEN_TTL_S),
      jwks: keys.jwks,
      async revokeDevice(orgId, deviceId) {
        await revokeDevice(database.db, orgId, deviceId)
        announce(orgId, deviceId)
        // Other instances would notice within the cache time anyway; the notice makes it immediate.
        await notify({ orgId, deviceId })
      },
      onDeviceRevoked: (listener) => void listeners.push(listener),
      async userRemoved(orgId, userId) {
        revocations.forgetUser(orgId, userId)
        await notify({ orgId, userId })
      },
    }

    app.decorate('tokens', tokens)
    app.decorate('sessions', { db: database.db, keys, accessTtlS: config.ACCESS_TOKEN_TTL_S, refreshTtlS: config.REFRESH_TOKEN_TTL_S })
    app.decorateRequest('principal', null as unknown as Principal)
    app.decorate('authenticate', async (request: FastifyRequest, reply: FastifyReply) => {
      const token = bearerToken(request.headers.authorization)
      if (!token) {
        reply.header('www-authenticate', 'Bearer')
        throw new TaskSyncError('unauthorized', 'an access token is required: Authorization: Bearer <token>')
      }
      const deviceKey = request.headers['x-device-key']
      try {
        request.principal = (await tokens.verifyAccess(token, typeof deviceKey === 'string' ? deviceKey : undefined)).principal
      } catch (err) {
        if (err instanceof TaskSyncError && err.code === 'unauthorized') reply.header('www-authenticate', 'Bearer error="invalid_token"')
        throw err
      }
    })
  },
  { name: 'auth', dependencies: ['config', 'storage', 'bus'] },
)
