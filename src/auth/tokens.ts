/**
 * Access tokens: short-lived JWTs naming user (sub), organization, role and
 * device. Signed with the shared JWT_SECRET (HS256) or with JWT_PRIVATE_KEY,
 * whose algorithm follows its type (Ed25519 → EdDSA, P-256 → ES256, RSA → RS256)
 * and whose public half is published as a JWKS.
 */
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto'
import { SignJWT, jwtVerify, exportJWK, calculateJwkThumbprint, errors as joseErrors, type JWK } from 'jose'
import { TaskSyncError } from '../protocol/errors.js'
import { ConfigError } from '../config/load.js'
import type { Principal } from './principal.js'
import { ROLES } from './permissions.js'

const ISSUER = 'tasksync'
const AUDIENCE = 'tasksync'

export interface SigningKeys {
  alg: 'HS256' | 'EdDSA' | 'ES256' | 'RS256'
  sign: Uint8Array | KeyObject
  verify: Uint8Array | KeyObject
  /** Key id put in the token header; set for asymmetric keys only. */
  kid?: string
  /** The public JWK set, or null when a shared secret signs. */
  jwks: { keys: JWK[] } | null
}

/** Builds the signing keys from configuration; throws ConfigError naming the variable when the key is unusable. */
export async function loadSigningKeys(cfg: { JWT_SECRET?: string; JWT_PRIVATE_KEY?: string }): Promise<SigningKeys> {
  if (!cfg.JWT_PRIVATE_KEY) {
    if (!cfg.JWT_SECRET) throw new ConfigError('JWT_SECRET or JWT_PRIVATE_KEY is required')
    const secret = new TextEncoder().encode(cfg.JWT_SECRET)
    return { alg: 'HS256', sign: secret, verify: secret, jwks: null }
  }
  // Environment files often carry a PEM on one line with literal "\n".
  const pem = cfg.JWT_PRIVATE_KEY.includes('\\n') ? cfg.JWT_PRIVATE_KEY.replace(/\\n/g, '\n') : cfg.JWT_PRIVATE_KEY
  let key: KeyObject
  try {
    key = createPrivateKey({ key: pem, format: 'pem' })
  } catch (err) {
    throw new ConfigError(`JWT_PRIVATE_KEY is not a PEM private key: ${(err as Error).message}`)
  }
  const alg = algorithmOf(key)
  const publicKey = createPublicKey(key)
  const jwk = await exportJWK(publicKey)
  const kid = await calculateJwkThumbprint(jwk)
  return { alg, sign: key, verify: publicKey, kid, jwks: { keys: [{ ...jwk, kid, alg, use: 'sig' }] } }
}

function algorithmOf(key: KeyObject): SigningKeys['alg'] {
  const type = key.asymmetricKeyType
  if (type === 'ed25519') return 'EdDSA'
  if (type === 'rsa') return 'RS256'
  if (type === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') return 'ES256'
  throw new ConfigError(`JWT_PRIVATE_KEY: unsupported key type ${type}${type === 'ec' ? ` on ${key.asymmetricKeyDetails?.namedCurve}` : ''} (use Ed25519, EC P-256 or RSA)`)
}

export async function signAccessToken(keys: SigningKeys, principal: Principal, ttlS: number): Promise<{ token: string; expiresAt: Date }> {
  const now = Math.floor(Date.now() / 1000)
  const token = await new SignJWT({ org: principal.orgId, role: principal.role, dev: principal.deviceId })
    .setProtectedHeader({ alg: keys.alg, typ: 'JWT', ...(keys.kid ? { kid: keys.kid } : {}) })
    .setSubject(principal.userId)
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setIssuedAt(now)
    .setExpirationTime(now + ttlS)
    .sign(keys.sign)
  return { token, expiresAt: new Date((now + ttlS) * 1000) }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/** Clock skew tolerated between instances by default (seconds), for `iat` and `nbf`. */
export const DEFAULT_CLOCK_SKEW_S = 30

/**
 * Verifies signature, algorithm, issuer, audience, expiry, and that the token was
 * not issued (`iat`, required) nor made valid (`nbf`) further in the future than
 * `clockSkewS`; throws `unauthorized` with a reason a client can act on. Expiry
 * gets no skew: an instance never honours a token its issuer would refuse.
 */
export async function verifyAccessToken(keys: SigningKeys, token: string, clockSkewS = DEFAULT_CLOCK_SKEW_S): Promise<{ principal: Principal; expiresAt: Date }> {
  // A token is verified once per process: its signature and claims cannot change, only the clock
  // can pass its expiry (checked on every use). Revocation is the caller's check, made every time.
  const cached = verifiedTokens(keys).get(token)
  if (cached) {
    if (cached.expiresAt.getTime() > Date.now()) return { principal: { ...cached.principal }, expiresAt: cached.expiresAt }
    verifiedTokens(keys).delete(token)
    throw new TaskSyncError('unauthorized', 'access token expired')
  }
  const verified = await verifySignedToken(keys, token, clockSkewS)
  remember(keys, token, { principal: { ...verified.principal }, expiresAt: verified.expiresAt })
  return verified
}

/** Verified tokens by signing keys: the last VERIFIED_TOKENS_MAX, in first-use order. */
const VERIFIED_TOKENS_MAX = 10_000
let lastSweep = 0
const verifiedByKeys = new WeakMap<SigningKeys, Map<string, { principal: Principal; expiresAt: Date }>>()

function verifiedTokens(keys: SigningKeys): Map<string, { principal: Principal; expiresAt: Date }> {
  let map = verifiedByKeys.get(keys)
  if (!map) verifiedByKeys.set(keys, (map = new Map()))
  return map
}

function remember(keys: SigningKeys, token: string, verified: { principal: Principal; expiresAt: Date }): void {
  const map = verifiedTokens(keys)
  if (map.size >= VERIFIED_TOKENS_MAX) {
    // Expired ones first (a sweep at most every 10 s); else the oldest entry.
    const now = Date.now()
    if (now - lastSweep > 10_000) {
      lastSweep = now
      for (const [k, v] of map) if (v.expiresAt.getTime() <= now) map.delete(k)
    }
    if (map.size >= VERIFIED_TOKENS_MAX) map.delete(map.keys().next().value!)
  }
  map.set(token, verified)
}

async function verifySignedToken(keys: SigningKeys, token: string, clockSkewS: number): Promise<{ principal: Principal; expiresAt: Date }> {
  let payload
  try {
    ;({ payload } = await jwtVerify(token, keys.verify, { issuer: ISSUER, audience: AUDIENCE, algorithms: [keys.alg], clockTolerance: clockSkewS }))
  } catch (err) {
    if (err instanceof joseErrors.JWTExpired) throw new TaskSyncError('unauthorized', 'access token expired')
    throw new TaskSyncError('unauthorized', 'invalid access token')
  }
  const { sub, org, role, dev, exp, iat } = payload as Record<string, unknown>
  const now = Date.now() / 1000
  if (typeof exp === 'number' && exp <= now) throw new TaskSyncError('unauthorized', 'access token expired')
  if (
    typeof sub !== 'string' || !UUID.test(sub) ||
    typeof org !== 'string' || !UUID.test(org) ||
    typeof dev !== 'string' || !UUID.test(dev) ||
    !ROLES.includes(role as Principal['role']) ||
    typeof exp !== 'number' ||
    typeof iat !== 'number' || iat > now + clockSkewS
  ) {
    throw new TaskSyncError('unauthorized', 'invalid access token')
  }
  return {
    principal: { userId: sub, orgId: org, deviceId: dev, role: role as Principal['role'] },
    expiresAt: new Date(exp * 1000),
  }
}
