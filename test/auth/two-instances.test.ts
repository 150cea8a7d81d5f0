import t from 'tap'
import { generateKeyPairSync } from 'node:crypto'
import { importJWK, jwtVerify } from 'jose'
import { startTestApp, api, registerOwner } from '../helpers/app.js'

t.test('two instances: a token from one works on the other; a revocation on one is felt at once on the other', async (t) => {
  const a = await startTestApp(t)
  const b = await startTestApp(t, { databaseUrl: a.databaseUrl, redisPrefix: a.redisPrefix })
  t.not(a.app.instanceId, b.app.instanceId)
  const owner = await registerOwner(a.url)
  t.equal((await api(b.url, owner.accessToken).get('/api/users/me')).status, 200)
  const refreshed = await api(b.url).post('/api/auth/refresh', { refreshToken: owner.refreshToken })
  t.equal(refreshed.status, 200, 'refresh on the other instance')

  const heard: string[] = []
  b.app.tokens.onDeviceRevoked((_org, deviceId) => heard.push(deviceId))
  // Warm b's cache with an "active" answer, then revoke on a.
  t.equal((await api(b.url, refreshed.body.accessToken).get('/api/users/me')).status, 200)
  t.equal((await api(a.url, refreshed.body.accessToken).delete(`/api/devices/${owner.device.id}`)).status, 204)
  const deadline = Date.now() + 5000
  while (!heard.includes(owner.device.id) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
  t.same(heard, [owner.device.id], 'the other instance hears of it (its gateway closes the sockets)')
  t.equal((await api(b.url, refreshed.body.accessToken).get('/api/users/me')).status, 401, 'and refuses the token')
})

t.test('without the bus notice a revocation still lands within the cache time', async (t) => {
  const a = await startTestApp(t, { redis: false })
  const b = await startTestApp(t, { redis: false, databaseUrl: a.databaseUrl })
  const owner = await registerOwner(a.url)
  t.equal((await api(b.url, owner.accessToken).get('/api/users/me')).status, 200, 'cached as active on b')
  await api(a.url, owner.accessToken).delete(`/api/devices/${owner.device.id}`)
  await new Promise((r) => setTimeout(r, 1500))
  t.equal((await api(b.url, owner.accessToken).get('/api/users/me')).status, 401)
})

t.test('asymmetric signing: JWKS published, tokens verifiable with it alone', async (t) => {
  const { privateKey } = generateKeyPairSync('ed25519', { privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } })
  const { url } = await startTestApp(t, { redis: false, env: { JWT_SECRET: '', JWT_PRIVATE_KEY: privateKey } })
  const owner = await registerOwner(url)
  const jwks = await api(url).get('/.well-known/jwks.json')
  t.equal(jwks.status, 200)
  t.equal(jwks.body.keys.length, 1)
  const [jwk] = jwks.body.keys
  t.match(jwk, { kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA', use: 'sig', kid: String })
  t.notOk('d' in jwk)
  const header = JSON.parse(Buffer.from(owner.accessToken.split('.')[0], 'base64url').toString())
  t.match(header, { alg: 'EdDSA', kid: jwk.kid })
  const { payload } = await jwtVerify(owner.accessToken, await importJWK(jwk, 'EdDSA'))
  t.equal(payload.sub, owner.user.id, 'a third party verifies with the published key')
  t.equal((await api(url, owner.accessToken).get('/api/users/me')).status, 200)
})
