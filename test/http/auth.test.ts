import t from 'tap'
import { randomUUID } from 'node:crypto'
import { SignJWT } from 'jose'
import { startTestApp, api, registerOwner, addMember, TEST_JWT_SECRET } from '../helpers/app.js'

const login = (url: string, email: string, password: string, device: object = { name: 'laptop', platform: 'web' }) =>
  api(url).post('/api/auth/login', { email, password, device })

t.test('register creates an organization and its owner, logged in', async (t) => {
  const { url } = await startTestApp(t)
  const deviceId = randomUUID()
  const res = await api(url).post('/api/auth/register', {
    orgName: 'Acme',
    email: 'Ada@Example.test',
    password: 'a long enough password',
    displayName: 'Ada',
    device: { id: deviceId, name: 'phone', platform: 'ios' },
  })
  t.equal(res.status, 201)
  t.match(res.body, {
    accessToken: String,
    refreshToken: String,
    expiresIn: 900,
    user: { email: 'ada@example.test', displayName: 'Ada', role: 'owner' },
    organization: { name: 'Acme' },
    device: { id: deviceId, name: 'phone', platform: 'ios', revokedAt: null },
  })
  t.equal(res.body.user.orgId, res.body.organization.id)
  t.notOk('passwordHash' in res.body.user, 'no hash leaves the server')
  const me = await api(url, res.body.accessToken).get('/api/users/me')
  t.same(me.body, res.body.user)

  const again = await api(url).post('/api/auth/register', { orgName: 'Other', email: 'ADA@example.TEST', password: 'another password', displayName: 'X' })
  t.equal(again.status, 409)
  t.equal(again.body.error.code, 'already_exists', 'an email is registered once, whatever its case')

  const noDevice = await registerOwner(url)
  t.match(noDevice.device, { name: 'default', platform: 'unknown' }, 'the device is optional at register')
})

t.test('invalid register and login bodies answer 400 and create nothing', async (t) => {
  const { url } = await startTestApp(t)
  const good = { orgName: 'Org', email: 'x@example.test', password: 'long enough', displayName: 'X' }
  for (const [why, body] of [
    ['missing email', { ...good, email: undefined }],
    ['bad email', { ...good, email: 'not-an-email' }],
    ['short password', { ...good, password: 'short' }],
    ['empty org name', { ...good, orgName: '' }],
    ['blank display name', { ...good, displayName: '   ' }],
    ['unknown field', { ...good, admin: true }],
    ['wrong type', { ...good, orgName: 42 }],
    ['bad device id', { ...good, device: { id: 'nope', name: 'a', platform: 'b' } }],
    ['device without platform', { ...good, device: { name: 'a' } }],
  ] as const) {
    const res = await api(url).post('/api/auth/register', body)
    t.equal(res.status, 400, why)
    t.equal(res.body.error.code, 'bad_request', why)
    t.type(res.body.error.message, 'string')
  }
  const created = await api(url).post('/api/auth/register', good)
  t.equal(created.status, 201, 'the email was never taken by a failed attempt')

  const noDevice = await api(url).post('/api/auth/login', { email: good.email, password: good.password })
  t.equal(noDevice.status, 400, 'login names its device')
  const junk = await api(url).request('POST', '/api/auth/login', '{"email":', { 'content-type': 'application/json' })
  t.equal(junk.status, 400)
  t.equal(junk.body.error.code, 'bad_request')
})

t.test('login: right password, wrong password, unknown email; device reuse rules', async (t) => {
  const { url } = await startTestApp(t)
  const owner = await registerOwner(url)
  const email = owner.user.email

  const wrong = await login(url, email, 'not the password')
  t.equal(wrong.status, 401)
  t.same(wrong.body, { error: { code: 'unauthorized', message: 'wrong email or password' } })
  const unknown = await login(url, 'nobody@example.test', 'whatever pass')
  t.same(unknown.body, wrong.body, 'an unknown email reads exactly like a wrong password')

  const first = await login(url, email.toUpperCase(), owner.password, { name: 'laptop', platform: 'web' })
  t.equal(first.status, 200)
  t.match(first.body, { user: { id: owner.user.id, role: 'owner' }, organization: { id: owner.organization.id }, device: { name: 'laptop' } })
  t.not(first.body.device.id, owner.device.id, 'no id: a new device')

  const reuse = await login(url, email, owner.password, { id: first.body.device.id, name: 'laptop (renamed)', platform: 'web' })
  t.equal(reuse.body.device.id, first.body.device.id, 'a known device of this user is reused')
  t.equal(reuse.body.device.name, 'laptop (renamed)')

  const chosen = randomUUID()
  const fresh = await login(url, email, owner.password, { id: chosen, name: 'tablet', platform: 'android' })
  t.equal(fresh.body.device.id, chosen, 'an unknown id is registered as given')

  const member = await addMember(url, owner.accessToken, 'member')
  const stolen = await login(url, member.user.email, member.password, { id: first.body.device.id, name: 'x', platform: 'y' })
  t.equal(stolen.status, 200)
  t.not(stolen.body.device.id, first.body.device.id, "another user's device id is never taken over")

  const otherOrg = await registerOwner(url)
  const crossOrg = await login(url, otherOrg.user.email, otherOrg.password, { id: first.body.device.id, name: 'x', platform: 'y' })
  t.equal(crossOrg.body.device.id, first.body.device.id, 'ids are per organization: the same id elsewhere neither conflicts nor reveals')
  t.equal(crossOrg.body.organization.id, otherOrg.organization.id)

  const revoked = await api(url, owner.accessToken).delete(`/api/devices/${chosen}`)
  t.equal(revoked.status, 204)
  const back = await login(url, email, owner.password, { id: chosen, name: 'tablet', platform: 'android' })
  t.not(back.body.device.id, chosen, 'a login never revives a revoked device')
})

t.test('refresh rotates; a spent token revokes its whole login; logout ends it', async (t) => {
  const { url } = await startTestApp(t)
  const owner = await registerOwner(url)
  const anon = api(url)

  const r1 = await anon.post('/api/auth/refresh', { refreshToken: owner.refreshToken })
  t.equal(r1.status, 200)
  t.not(r1.body.refreshToken, owner.refreshToken, 'a new refresh token')
  t.match(r1.body, { accessToken: String, expiresIn: 900, user: { id: owner.user.id }, device: { id: owner.device.id } })
  t.equal((await api(url, r1.body.accessToken).get('/api/users/me')).status, 200)

  const r2 = await anon.post('/api/auth/refresh', { refreshToken: r1.body.refreshToken })
  t.equal(r2.status, 200, 'the chain goes on')

  const reuse = await anon.post('/api/auth/refresh', { refreshToken: r1.body.refreshToken })
  t.equal(reuse.status, 401, 'a spent token is refused')
  t.equal(reuse.body.error.code, 'unauthorized')
  t.match(reuse.body.error.message, /already used/)
  const latest = await anon.post('/api/auth/refresh', { refreshToken: r2.body.refreshToken })
  t.equal(latest.status, 401, 'and the whole family is revoked: even the newest token')

  // Another login of the same user is a separate family and survives.
  const other = await login(url, owner.user.email, owner.password)
  t.equal((await anon.post('/api/auth/refresh', { refreshToken: other.body.refreshToken })).status, 200)

  const third = await login(url, owner.user.email, owner.password)
  const out = await anon.post('/api/auth/logout', { refreshToken: third.body.refreshToken })
  t.equal(out.status, 204)
  t.equal(out.body, null, '204 has no body')
  t.equal((await anon.post('/api/auth/refresh', { refreshToken: third.body.refreshToken })).status, 401, 'logged out')
  t.equal((await anon.post('/api/auth/logout', { refreshToken: third.body.refreshToken })).status, 204, 'logout is idempotent')

  t.equal((await anon.post('/api/auth/refresh', { refreshToken: 'made-up' })).status, 401)
  t.equal((await anon.post('/api/auth/logout', { refreshToken: 'made-up' })).status, 401)
  t.equal((await anon.post('/api/auth/refresh', {})).status, 400)
})

t.test('two refreshes racing with one token: one wins, the login is revoked', async (t) => {
  const { url } = await startTestApp(t)
  const owner = await registerOwner(url)
  const both = await Promise.all([0, 1].map(() => api(url).post('/api/auth/refresh', { refreshToken: owner.refreshToken })))
  t.same(both.map((r) => r.status).sort(), [200, 401])
  const winner = both.find((r) => r.status === 200)!
  t.equal((await api(url).post('/api/auth/refresh', { refreshToken: winner.body.refreshToken })).status, 401, 'reuse was detected')
})

t.test('access tokens: missing, malformed, expired, forged', async (t) => {
  const { url } = await startTestApp(t)
  const owner = await registerOwner(url)
  const me = (token?: string, header?: string) =>
    api(url, token).request('GET', '/api/users/me', undefined, header ? { authorization: header } : {})

  const none = await me()
  t.equal(none.status, 401)
  t.equal(none.headers.get('www-authenticate'), 'Bearer')
  t.equal((await me(undefined, `Basic ${owner.accessToken}`)).status, 401, 'only the Bearer scheme')
  t.equal((await me('garbage')).status, 401)
  t.equal((await me(undefined, `bearer ${owner.accessToken}`)).status, 200, 'the scheme is case-insensitive')

  const now = Math.floor(Date.now() / 1000)
  const claims = { org: owner.organization.id, role: 'owner', dev: owner.device.id }
  const sign = (exp: number, secret = TEST_JWT_SECRET) =>
    new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setSubject(owner.user.id).setIssuer('tasksync').setAudience('tasksync').setIssuedAt(now - 1000).setExpirationTime(exp).sign(new TextEncoder().encode(secret))

  const expired = await me(await sign(now - 1))
  t.equal(expired.status, 401)
  t.same(expired.body, { error: { code: 'unauthorized', message: 'access token expired' } })
  t.equal((await me(await sign(now + 60))).status, 200, 'the same claims, unexpired, pass')
  t.equal((await me(await sign(now + 60, 'another-secret-another-secret-another-secret'))).status, 401, 'another secret')
})

t.test('a short ACCESS_TOKEN_TTL_S: the token carries it and really expires', async (t) => {
  const { url } = await startTestApp(t, { env: { ACCESS_TOKEN_TTL_S: '10' } })
  const owner = await registerOwner(url)
  t.equal(owner.expiresIn, 10)
  const payload = JSON.parse(Buffer.from(owner.accessToken.split('.')[1], 'base64url').toString())
  t.equal(payload.exp - payload.iat, 10)
  t.match(payload, { sub: owner.user.id, org: owner.organization.id, role: 'owner', dev: owner.device.id })
  t.equal((await api(url, owner.accessToken).get('/api/users/me')).status, 200)
  // Wait past the expiry for real (11.5 s for a 10 s token: loose enough for a busy machine).
  await new Promise((r) => setTimeout(r, Math.max(0, payload.exp * 1000 + 1500 - Date.now())))
  const late = await api(url, owner.accessToken).get('/api/users/me')
  t.equal(late.status, 401)
  t.equal(late.body.error.message, 'access token expired')
  const renewed = await api(url).post('/api/auth/refresh', { refreshToken: owner.refreshToken })
  t.equal((await api(url, renewed.body.accessToken).get('/api/users/me')).status, 200, 'the refresh token renews it')
})

t.test('auth routes are rate limited, answered in the one error shape', async (t) => {
  const { url } = await startTestApp(t, { env: { AUTH_RATE_LIMIT_PER_MIN: '3' } })
  const statuses: number[] = []
  let last
  for (let i = 0; i < 5; i++) {
    last = await login(url, 'nobody@example.test', 'whatever pass')
    statuses.push(last.status)
  }
  t.same(statuses, [401, 401, 401, 429, 429])
  t.equal(last!.body.error.code, 'rate_limited')
  t.match(last!.body.error.message, /too many requests/)
  t.ok(Number(last!.headers.get('retry-after')) > 0, 'Retry-After tells when')
  const health = await api(url).get('/health')
  t.equal(health.status, 200, 'other routes are not limited')
})

t.test('JWKS: 200 with no keys while a shared secret signs (PROTOCOL.md section 5)', async (t) => {
  const { url } = await startTestApp(t, { redis: false })
  const res = await api(url).get('/.well-known/jwks.json')
  t.equal(res.status, 200)
  t.same(res.body, { keys: [] }, 'a verifier learns there is no public key, not that the route is missing')
})
