import t from 'tap'
import { generateKeyPairSync, randomUUID } from 'node:crypto'
import { SignJWT } from 'jose'
import { loadSigningKeys, signAccessToken, verifyAccessToken } from '../../src/auth/tokens.js'
import { ConfigError } from '../../src/config/index.js'
import type { Principal } from '../../src/auth/principal.js'

const principal: Principal = { orgId: randomUUID(), userId: randomUUID(), deviceId: randomUUID(), role: 'member' }
const SECRET = 'x'.repeat(40)
const pem = (type: 'ed25519' | 'ec' | 'rsa', opts: object = {}) =>
  (generateKeyPairSync as any)(type, { ...opts, privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } }).privateKey as string

t.test('a shared secret signs HS256 and publishes no keys', async (t) => {
  const keys = await loadSigningKeys({ JWT_SECRET: SECRET })
  t.equal(keys.alg, 'HS256')
  t.equal(keys.jwks, null)
  const { token, expiresAt } = await signAccessToken(keys, principal, 60)
  const verified = await verifyAccessToken(keys, token)
  t.same(verified.principal, principal, 'the token names user, organization, role and device')
  t.equal(verified.expiresAt.getTime(), expiresAt.getTime())
})

for (const [name, key, alg, kty] of [
  ['Ed25519', pem('ed25519'), 'EdDSA', 'OKP'],
  ['EC P-256', pem('ec', { namedCurve: 'prime256v1' }), 'ES256', 'EC'],
  ['RSA', pem('rsa', { modulusLength: 2048 }), 'RS256', 'RSA'],
] as const) {
  t.test(`${name} private key: ${alg}, public JWK published`, async (t) => {
    const keys = await loadSigningKeys({ JWT_PRIVATE_KEY: key })
    t.equal(keys.alg, alg)
    t.equal(keys.jwks!.keys.length, 1)
    const jwk = keys.jwks!.keys[0]
    t.match(jwk, { kty, alg, use: 'sig', kid: String })
    t.notOk('d' in jwk, 'never the private part')
    const { token } = await signAccessToken(keys, principal, 60)
    t.same((await verifyAccessToken(keys, token)).principal, principal)
    const escaped = await loadSigningKeys({ JWT_PRIVATE_KEY: key.replace(/\n/g, '\\n') })
    t.equal(escaped.alg, alg, 'a PEM with literal \\n (env files) is accepted')
  })
}

t.test('unusable keys are configuration errors naming JWT_PRIVATE_KEY', async (t) => {
  const bad = await loadSigningKeys({ JWT_PRIVATE_KEY: 'not a key' }).catch((e: Error) => e)
  t.ok(bad instanceof ConfigError)
  t.match(bad, { message: /^JWT_PRIVATE_KEY is not a PEM private key/ })
  await t.rejects(loadSigningKeys({ JWT_PRIVATE_KEY: pem('ec', { namedCurve: 'secp384r1' }) }), {
    name: 'ConfigError',
    message: /JWT_PRIVATE_KEY: unsupported key type ec on secp384r1/,
  })
})

t.test('verification refuses what it should', async (t) => {
  const keys = await loadSigningKeys({ JWT_SECRET: SECRET })
  const other = await loadSigningKeys({ JWT_SECRET: 'y'.repeat(40) })
  const { token } = await signAccessToken(keys, principal, 60)
  const secret = new TextEncoder().encode(SECRET)
  const now = Math.floor(Date.now() / 1000)
  const claims = { org: principal.orgId, role: principal.role, dev: principal.deviceId }
  const craft = (c: object, exp = now + 60, alg = 'HS256') =>
    new SignJWT(c as never).setProtectedHeader({ alg }).setSubject(principal.userId).setIssuer('tasksync').setAudience('tasksync').setIssuedAt(now - 100).setExpirationTime(exp).sign(secret)

  await t.rejects(verifyAccessToken(keys, await craft(claims, now - 5)), { code: 'unauthorized', message: 'access token expired' })
  await t.rejects(verifyAccessToken(other, token), { code: 'unauthorized', message: 'invalid access token' }, 'another secret')
  const [h, p, s] = token.split('.')
  const forged = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p, 'base64url').toString()), role: 'owner' })).toString('base64url')
  await t.rejects(verifyAccessToken(keys, `${h}.${forged}.${s}`), { code: 'unauthorized' }, 'a tampered payload')
  await t.rejects(verifyAccessToken(keys, await craft({ ...claims, role: 'superuser' })), { code: 'unauthorized' }, 'an unknown role')
  await t.rejects(verifyAccessToken(keys, await craft({ org: principal.orgId, role: 'member' })), { code: 'unauthorized' }, 'no device')
  await t.rejects(verifyAccessToken(keys, await craft({ ...claims, org: 'x' })), { code: 'unauthorized' }, 'a malformed org id')
  await t.rejects(verifyAccessToken(keys, await craft(claims, now + 60, 'HS512')), { code: 'unauthorized' }, 'another algorithm')
  const unsigned = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${p}.`
  await t.rejects(verifyAccessToken(keys, unsigned), { code: 'unauthorized' }, 'alg none')
  await t.rejects(verifyAccessToken(keys, 'garbage'), { code: 'unauthorized' })
})

t.test('a token verified once is remembered, copied out, and still expires on time', async (t) => {
  const keys = await loadSigningKeys({ JWT_SECRET: SECRET })
  const { token } = await signAccessToken(keys, principal, 1)
  const first = await verifyAccessToken(keys, token)
  first.principal.role = 'owner'
  const again = await verifyAccessToken(keys, token)
  t.same(again.principal, principal, 'a caller changing its copy changes nothing for the next')
  const other = await loadSigningKeys({ JWT_SECRET: 'y'.repeat(40) })
  await t.rejects(verifyAccessToken(other, token), { code: 'unauthorized' }, 'remembered per signing keys: other keys still refuse it')
  await new Promise((r) => setTimeout(r, 1100))
  await t.rejects(verifyAccessToken(keys, token), { code: 'unauthorized', message: /expired/ }, 'past its exp, a remembered token is refused')
  const tampered = token.slice(0, -2) + (token.endsWith('AA') ? 'BB' : 'AA')
  await t.rejects(verifyAccessToken(keys, tampered), { code: 'unauthorized' }, 'another string is verified, not looked up')
})
