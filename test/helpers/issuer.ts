/**
 * A real identity provider for tests of bring-your-own auth: its own key pairs
 * (jose generateKeyPair), its JWKS served over HTTP on loopback, keys rotated on
 * demand, and tokens signed the way Auth0 or Keycloak sign access tokens.
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { randomUUID } from 'node:crypto'
import { SignJWT, exportJWK, exportSPKI, generateKeyPair, type CryptoKey, type JWK } from 'jose'
import type { Teardown } from './teardown.js'

export interface IssuerKey {
  kid: string
  alg: 'RS256' | 'ES256'
  privateKey: CryptoKey
  publicKey: CryptoKey
  publicJwk: JWK
  publicPem: string
}

export interface TokenInput {
  sub?: string
  org?: string | null
  role?: unknown
  name?: string
  email?: string
  iss?: string
  aud?: string | string[]
  /** Seconds from now (negative: in the past). */
  expIn?: number
  iatIn?: number
  nbfIn?: number
  /** Sign with this key (default: the issuer's current one). */
  key?: IssuerKey
  /** Claims added as given (custom claim names). */
  extra?: Record<string, unknown>
}

export interface Issuer {
  /** The issuer URL, also the `iss` of its tokens. */
  url: string
  jwksUrl: string
  audience: string
  /** The key tokens are signed with now. */
  current: IssuerKey
  /** Keys published in the JWKS. */
  published: IssuerKey[]
  /** How many times the JWKS was fetched. */
  fetches: number
  newKey(alg?: 'RS256' | 'ES256'): Promise<IssuerKey>
  /** Publishes exactly these keys; the first one signs from now on. */
  publish(keys: IssuerKey[]): void
  sign(input?: TokenInput): Promise<string>
}

export async function newIssuerKey(alg: 'RS256' | 'ES256' = 'RS256'): Promise<IssuerKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true })
  const kid = `k-${randomUUID().slice(0, 8)}`
  return { kid, alg, privateKey, publicKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' }, publicPem: await exportSPKI(publicKey) }
}

export async function startIssuer(t: Teardown, audience = 'tasksync-api'): Promise<Issuer> {
  const first = await newIssuerKey()
  const issuer: Issuer = {
    url: '',
    jwksUrl: '',
    audience,
    current: first,
    published: [first],
    fetches: 0,
    newKey: newIssuerKey,
    publish(keys) {
      issuer.published = keys
      issuer.current = keys[0]
    },
    async sign(input = {}) {
      const now = Math.floor(Date.now() / 1000)
      const key = input.key ?? issuer.current
      const claims: Record<string, unknown> = { ...input.extra }
      if (input.org !== null) claims.org_id = input.org ?? 'acme'
      if (input.role !== undefined) claims.role = input.role
      if (input.name !== undefined) claims.name = input.name
      if (input.email !== undefined) claims.email = input.email
      if (input.nbfIn !== undefined) claims.nbf = now + input.nbfIn
      return new SignJWT(claims)
        .setProtectedHeader({ alg: key.alg, typ: 'at+jwt', kid: key.kid })
        .setSubject(input.sub ?? `auth0|${randomUUID()}`)
        .setIssuer(input.iss ?? issuer.url)
        .setAudience(input.aud ?? audience)
        .setIssuedAt(now + (input.iatIn ?? 0))
        .setExpirationTime(now + (input.expIn ?? 600))
        .sign(key.privateKey)
    },
  }
  const server = createServer((req, res) => {
    if (req.url !== '/.well-known/jwks.json') {
      res.writeHead(404).end()
      return
    }
    issuer.fetches++
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: issuer.published.map((k) => k.publicJwk) }))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => {
    server.close(() => resolve())
    server.closeAllConnections()
  }))
  const { port } = server.address() as AddressInfo
  issuer.url = `http://127.0.0.1:${port}/`
  issuer.jwksUrl = `http://127.0.0.1:${port}/.well-known/jwks.json`
  return issuer
}

/** The environment that points a test app at this issuer (short key cache so rotation shows quickly). */
export function issuerEnv(issuer: Issuer, extra: Record<string, string> = {}): Record<string, string> {
  return {
    AUTH_JWKS_URL: issuer.jwksUrl,
    AUTH_ISSUER: issuer.url,
    AUTH_AUDIENCE: issuer.audience,
    AUTH_JWKS_CACHE_S: '1',
    AUTH_JWKS_COOLDOWN_S: '0',
    ...extra,
  }
}
