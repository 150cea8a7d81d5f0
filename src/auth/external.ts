/**
 * Bring-your-own auth: access tokens signed by the app's identity provider.
 * Keys come from its JWKS URL through jose's createRemoteJWKSet (cached for
 * AUTH_JWKS_CACHE_S, refetched when a token names an unknown `kid`, at most once
 * per AUTH_JWKS_COOLDOWN_S), only asymmetric algorithms are accepted (no `none`,
 * no HS256 with a public key as the secret), and issuer, audience, expiry, `iat`
 * and `nbf` are checked as for tasksync's own tokens. The organization, user and
 * device a token names are provisioned on first sight and remembered here, so a
 * known identity costs no query beyond the liveness check every token gets.
 */
import { createRemoteJWKSet, decodeJwt, errors as joseErrors, jwtVerify, type JWTPayload } from 'jose'
import type { ExternalAuthConfig } from '../config/load.js'
import { TaskSyncError } from '../protocol/errors.js'
import type { Executor } from '../storage/db.js'
import { provisionExternal, type ExternalIdentity, type ProvisionedIds } from '../storage/external-identities.js'
import type { Principal } from './principal.js'
import { claimAt, DEFAULT_DEVICE_KEY, DEVICE_KEY, mapRole, stringClaim } from './external-claims.js'

/** Asymmetric algorithms only: a JWKS holds public keys, and a public key is no secret. */
export const EXTERNAL_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519']

const MAX_ENTRIES = 50_000
/** A remembered identity's profile is compared with the token's; this bounds how stale the memory gets. */
const CACHE_MS = 5 * 60_000

/** The `iss` of a token, read without verifying it (only to choose the verifier). */
export function unverifiedIssuer(token: string): string | undefined {
  try {
    const iss = decodeJwt(token).iss
    return typeof iss === 'string' ? iss : undefined
  } catch {
    return undefined
  }
}

const invalid = (why = 'invalid access token') => new TaskSyncError('unauthorized', why)

export class ExternalTokens {
  private readonly jwks: ReturnType<typeof createRemoteJWKSet>
  private readonly known = new Map<string, { ids: ProvisionedIds; profile: string; until: number }>()
  private readonly pending = new Map<string, Promise<ProvisionedIds>>()

  constructor(
    private readonly cfg: ExternalAuthConfig,
    private readonly exec: Executor,
    private readonly clockSkewS: number,
  ) {
    this.jwks = createRemoteJWKSet(cfg.jwksUrl, { cacheMaxAge: cfg.jwksCacheMs, cooldownDuration: cfg.jwksCooldownMs, timeoutDuration: 5000 })
  }

  get issuer(): string {
    return this.cfg.issuer
  }

  /**
   * Verifies an identity provider's token and answers its principal, provisioning
   * what it names on first sight. Throws `unauthorized` (bad token), `forbidden`
   * (a valid token whose role maps to none of tasksync's, with AUTH_DEFAULT_ROLE=none)
   * or `unavailable` (the provider's keys cannot be fetched).
   */
  async verify(token: string, deviceKey: string | undefined): Promise<{ principal: Principal; expiresAt: Date }> {
    const payload = await this.verifySignature(token)
    const identity = this.identityOf(payload, deviceKey)
    const ids = await this.provisioned(identity)
    return { principal: { ...ids, role: identity.role }, expiresAt: new Date((payload.exp as number) * 1000) }
  }

  private async verifySignature(token: string): Promise<JWTPayload> {
    let payload: JWTPayload
    try {
      ;({ payload } = await jwtVerify(token, this.jwks, {
        issuer: this.cfg.issuer,
        audience: [...this.cfg.audience],
        algorithms: EXTERNAL_ALGORITHMS,
        clockTolerance: this.clockSkewS,
        requiredClaims: ['sub', 'exp', 'iat'],
      }))
    } catch (err) {
      if (err instanceof joseErrors.JWTExpired) throw invalid('access token expired')
      if (err instanceof joseErrors.JWKSTimeout || err instanceof joseErrors.JWKSInvalid || !(err instanceof joseErrors.JOSEError)) {
        throw new TaskSyncError('unavailable', "the identity provider's keys could not be fetched; retry shortly")
      }
      throw invalid()
    }
    const now = Date.now() / 1000
    // Expiry gets no skew (as for tasksync's own tokens); iat may be at most the skew ahead.
    if (typeof payload.exp !== 'number' || payload.exp <= now) throw invalid('access token expired')
    if (typeof payload.iat !== 'number' || payload.iat > now + this.clockSkewS) throw invalid()
    return payload
  }

  private identityOf(payload: JWTPayload, deviceKey: string | undefined): ExternalIdentity {
    const { claims, roleMap, defaultRole, defaultOrg, issuer } = this.cfg
    const subject = payload.sub
    if (typeof subject !== 'string' || subject.length < 1 || subject.length > 255) throw invalid('the token has no usable sub claim')
    const rawOrg = claimAt(payload, claims.org)
    const orgRef = (typeof rawOrg === 'number' ? String(rawOrg) : stringClaim(rawOrg, 255)) ?? defaultOrg
    if (!orgRef) throw invalid(`the token has no ${claims.org} claim naming its organization`)
    const role = mapRole(claimAt(payload, claims.role), roleMap, defaultRole)
    if (!role) throw new TaskSyncError('forbidden', `the token's ${claims.role} claim maps to no tasksync role`)
    const key = deviceKey ?? DEFAULT_DEVICE_KEY
    if (!DEVICE_KEY.test(key)) throw invalid('the device key must be 1–128 visible ASCII characters')
    const email = stringClaim(claimAt(payload, claims.email), 254) ?? ''
    const name = stringClaim(claimAt(payload, claims.name), 200) ?? (email || subject.slice(0, 200))
    return { issuer, orgRef, subject, deviceKey: key, role, name, email, issuedAt: payload.iat as number }
  }

  /** The ids of an identity; the first request of each provisions it, concurrent ones wait for it. */
  private async provisioned(identity: ExternalIdentity): Promise<ProvisionedIds> {
    const key = `${identity.orgRef}\n${identity.subject}\n${identity.deviceKey}`
    const profile = `${identity.role}\n${identity.name}\n${identity.email}`
    const hit = this.known.get(key)
    if (hit && hit.profile === profile && hit.until > Date.now()) return hit.ids
    const inFlight = `${key}\n${profile}`
    let started = this.pending.get(inFlight)
    if (!started) {
      started = provisionExternal(this.exec, identity).finally(() => this.pending.delete(inFlight))
      this.pending.set(inFlight, started)
    }
    const ids = await started
    if (this.known.size >= MAX_ENTRIES) this.known.clear()
    this.known.set(key, { ids, profile, until: Date.now() + CACHE_MS })
    return ids
  }
}
