/**
 * Bring-your-own auth against a real identity provider started here (its own key
 * pairs, its JWKS over HTTP on loopback): tokens it signs are accepted on REST and
 * on /ws, their organization, user and device provisioned on first sight; every
 * kind of bad token is refused on both; keys rotate mid-test; the built-in
 * accounts keep working beside it; a provisioned organization is as isolated as
 * any other.
 */
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { SignJWT } from 'jose'
import { api, registerOwner, startTestApp, TEST_JWT_SECRET } from '../helpers/app.js'
import { issuerEnv, newIssuerKey, startIssuer, type Issuer } from '../helpers/issuer.js'
import { TestSocket, until } from '../ws/helpers.js'

const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url')

/** REST status of GET /api/users/me with this token (and device key). */
async function restStatus(url: string, token: string, deviceKey?: string): Promise<number> {
  const res = await api(url, token).request('GET', '/api/users/me', undefined, deviceKey ? { 'x-device-key': deviceKey } : {})
  return res.status
}

/** 101 when /ws accepts the token (the socket is closed again), else the HTTP status of the refusal. */
async function wsStatus(url: string, token: string, deviceKey?: string): Promise<number> {
  try {
    const s = await TestSocket.open(url, token, { query: deviceKey ? { device_key: deviceKey } : {} })
    s.close()
    return 101
  } catch (err) {
    return (err as { status?: number }).status ?? -1
  }
}

async function badTokens(issuer: Issuer): Promise<Array<[string, string]>> {
  const now = Math.floor(Date.now() / 1000)
  const stranger = await newIssuerKey()
  const claims = { sub: 'auth0|mallory', org_id: 'acme', role: 'owner', iss: issuer.url, aud: issuer.audience, iat: now, exp: now + 600 }
  const hs = (secret: string) =>
    new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'JWT', kid: issuer.current.kid }).sign(new TextEncoder().encode(secret))
  return [
    ['wrong issuer', await issuer.sign({ iss: 'https://evil.example/' })],
    ['wrong audience', await issuer.sign({ aud: 'another-api' })],
    ['expired', await issuer.sign({ expIn: -5 })],
    ['issued in the future beyond the clock skew', await issuer.sign({ iatIn: 120 })],
    ['not valid before a future time beyond the clock skew', await issuer.sign({ nbfIn: 120 })],
    ['unknown kid (a key the issuer never published)', await issuer.sign({ key: stranger })],
    ['a published kid on a signature by another key', await issuer.sign({ key: { ...stranger, kid: issuer.current.kid } })],
    ['alg none', `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}.`],
    ['HS256 with the public key (PEM) as the secret', await hs(issuer.current.publicPem)],
    ['HS256 with the public key (JWK) as the secret', await hs(JSON.stringify(issuer.current.publicJwk))],
    ['no organization claim', await issuer.sign({ org: null })],
    ['a tasksync-shaped token signed with the issuer key but tasksync as issuer', await issuer.sign({ iss: 'tasksync', aud: 'tasksync' })],
  ]
}

t.test('tokens of the identity provider on REST and /ws: provisioning, profile, roles, devices, refusals', async (t) => {
  const issuer = await startIssuer(t)
  const app = await startTestApp(t, { env: issuerEnv(issuer, { AUTH_ROLE_MAP: 'Editor=member,Reader=viewer,tasksync-admin=admin' }) })
  const alice = `auth0|${randomUUID()}`

  await t.test('first sight provisions organization, user and device; profile from the claims', async (t) => {
    const token = await issuer.sign({ sub: alice, org: 'acme', role: ['offline_access', 'tasksync-admin', 'Editor'], name: 'Alice Liddell', email: 'alice@acme.test' })
    const me = await api(app.url, token).request('GET', '/api/users/me', undefined, { 'x-device-key': 'alice-laptop' })
    t.equal(me.status, 200)
    t.match(me.body, { displayName: 'Alice Liddell', email: 'alice@acme.test', role: 'admin' }, 'the highest mapped role of the array wins')
    const devices = await api(app.url, token).request('GET', '/api/devices', undefined, { 'x-device-key': 'alice-laptop' })
    t.equal(devices.status, 200)
    t.same(devices.body.items.map((d: { name: string }) => d.name), ['alice-laptop'])
    // The same identity again: the same user, no second device.
    const again = await api(app.url, await issuer.sign({ sub: alice, org: 'acme', role: 'tasksync-admin', name: 'Alice Liddell', email: 'alice@acme.test' }))
      .request('GET', '/api/users/me', undefined, { 'x-device-key': 'alice-laptop' })
    t.equal(again.body.id, me.body.id)
    // No device key: the user's `default` device.
    const plain = await api(app.url, token).get('/api/users/me')
    t.equal(plain.body.id, me.body.id)
    const all = await api(app.url, token).get('/api/devices')
    t.same(all.body.items.map((d: { name: string }) => d.name).sort(), ['alice-laptop', 'default'])
  })

  await t.test('writes go through, on REST and over /ws, with the provisioned ids', async (t) => {
    const token = await issuer.sign({ sub: alice, org: 'acme', role: 'Editor' })
    const created = await api(app.url, token).post('/api/tasks', { title: 'from the identity provider' })
    t.equal(created.status, 201)
    const me = (await api(app.url, token).get('/api/users/me')).body
    t.equal(created.body.updatedBy, me.id)
    const s = await TestSocket.open(app.url, token, { query: { device_key: 'alice-phone' } })
    t.teardown(() => s.close())
    s.send({ type: 'hello', clientId: s.clientId })
    await s.next('welcome')
    const taskId = randomUUID()
    const ack = await s.request({ type: 'create', seq: 1, taskId, task: { title: 'over the socket' } }, 'ack')
    t.equal(ack.rev, 1)
    const log = await api(app.url, token).get(`/api/tasks/${taskId}/ops`)
    const devices = (await api(app.url, token).get('/api/devices')).body.items as { id: string; name: string }[]
    t.equal(log.body.ops[0].deviceId, devices.find((d) => d.name === 'alice-phone')?.id, 'the op names the device of the socket key')
    // In-band renewal with a fresh token keeps the socket and its device.
    const authed = await s.request({ type: 'auth', token: await issuer.sign({ sub: alice, org: 'acme', role: 'Editor' }) }, 'authed')
    t.ok(authed.expiresAt)
    // A token of someone else in-band: the socket is closed.
    s.send({ type: 'auth', token: await issuer.sign({ org: 'acme', role: 'Editor' }) })
    t.equal((await s.closed).code, 1008)
  })

  await t.test('an unknown role takes AUTH_DEFAULT_ROLE (member); a viewer may not write', async (t) => {
    const sub = `kc|${randomUUID()}`
    const unknown = await issuer.sign({ sub, org: 'acme', role: 'superuser' })
    t.equal((await api(app.url, unknown).get('/api/users/me')).body.role, 'member')
    const none = await issuer.sign({ org: 'acme' })
    t.equal((await api(app.url, none).get('/api/users/me')).body.role, 'member')
    const viewer = await issuer.sign({ org: 'acme', role: 'Reader' })
    const refused = await api(app.url, viewer).post('/api/tasks', { title: 'no' })
    t.equal(refused.status, 403)
  })

  await t.test('a role changed at the provider holds from its next token; tasksync does not change it', async (t) => {
    const sub = `auth0|${randomUUID()}`
    const admin = await issuer.sign({ sub: alice, org: 'acme', role: 'tasksync-admin' })
    const asViewer = await issuer.sign({ sub, org: 'acme', role: 'viewer', name: 'Bob' })
    const bob = (await api(app.url, asViewer).get('/api/users/me')).body
    t.equal(bob.role, 'viewer')
    t.equal((await api(app.url, asViewer).post('/api/tasks', { title: 'no' })).status, 403)
    // Promoted at the provider: a token issued later says member.
    const asMember = await issuer.sign({ sub, org: 'acme', role: 'member', name: 'Bob', iatIn: 1 })
    t.equal((await api(app.url, asMember).post('/api/tasks', { title: 'yes' })).status, 201)
    t.equal((await api(app.url, admin).get('/api/users')).body.items.find((u: { id: string }) => u.id === bob.id).role, 'member')
    // The older token keeps the role it carries until it expires, and does not roll the stored profile back.
    t.equal((await api(app.url, asViewer).post('/api/tasks', { title: 'no' })).status, 403)
    t.equal((await api(app.url, admin).get('/api/users')).body.items.find((u: { id: string }) => u.id === bob.id).role, 'member')
    const patch = await api(app.url, admin).patch(`/api/users/${bob.id}`, { role: 'admin' })
    t.equal(patch.status, 403)
    t.equal(patch.body.error.code, 'forbidden')
  })

  await t.test('a revoked device is refused, other devices of the user still work', async (t) => {
    const sub = `auth0|${randomUUID()}`
    const token = await issuer.sign({ sub, org: 'acme', role: 'member' })
    t.equal(await restStatus(app.url, token, 'tablet'), 200)
    const tablet = (await api(app.url, token).request('GET', '/api/devices', undefined, { 'x-device-key': 'tablet' })).body.items[0]
    t.equal((await api(app.url, token).request('DELETE', `/api/devices/${tablet.id}`, undefined, { 'x-device-key': 'tablet' })).status, 204)
    t.equal(await restStatus(app.url, token, 'tablet'), 401)
    t.equal(await wsStatus(app.url, token, 'tablet'), 401)
    t.equal(await restStatus(app.url, token, 'phone'), 200)
  })

  await t.test('device keys are the client\'s choice, so one user has at most 100 live devices', async (t) => {
    const token = await issuer.sign({ sub: `auth0|${randomUUID()}`, org: 'acme', role: 'member' })
    for (let batch = 0; batch < 10; batch++) {
      const statuses = await Promise.all(Array.from({ length: 10 }, (_, i) => restStatus(app.url, token, `key-${batch * 10 + i}`)))
      t.same([...new Set(statuses)], [200], `keys ${batch * 10}…${batch * 10 + 9}`)
    }
    const over = await api(app.url, token).request('GET', '/api/users/me', undefined, { 'x-device-key': 'key-100' })
    t.equal(over.status, 403)
    t.match(over.body.error.message, /revoke one/)
    t.equal(await wsStatus(app.url, token, 'key-100'), 403)
    t.equal(await restStatus(app.url, token, 'key-7'), 200, 'a known key still works')
    const devices = (await api(app.url, token).request('GET', '/api/devices?limit=100', undefined, { 'x-device-key': 'key-7' })).body.items
    const seven = devices.find((d: { name: string }) => d.name === 'key-7')
    t.equal((await api(app.url, token).request('DELETE', `/api/devices/${seven.id}`, undefined, { 'x-device-key': 'key-8' })).status, 204)
    t.equal(await restStatus(app.url, token, 'key-100'), 200, 'a revoked device frees a place')
  })

  await t.test('a deactivated provisioned user is refused everywhere and not provisioned again', async (t) => {
    const sub = `auth0|${randomUUID()}`
    const token = await issuer.sign({ sub, org: 'acme', role: 'member' })
    const user = (await api(app.url, token).get('/api/users/me')).body
    const admin = await issuer.sign({ sub: alice, org: 'acme', role: 'tasksync-admin' })
    t.equal((await api(app.url, admin).delete(`/api/users/${user.id}`)).status, 204)
    const fresh = await issuer.sign({ sub, org: 'acme', role: 'member', iatIn: 1 })
    t.equal(await restStatus(app.url, fresh), 401)
    t.equal(await restStatus(app.url, fresh, 'a-new-device'), 401)
    t.equal(await wsStatus(app.url, fresh, 'a-new-device'), 401)
    t.notOk((await api(app.url, admin).get('/api/users')).body.items.some((u: { id: string }) => u.id === user.id))
  })

  await t.test('every bad token is refused on REST and on /ws', async (t) => {
    for (const [name, token] of await badTokens(issuer)) {
      t.equal(await restStatus(app.url, token), 401, `REST: ${name}`)
      t.equal(await wsStatus(app.url, token), 401, `/ws: ${name}`)
    }
    const within = await issuer.sign({ org: 'acme', iatIn: 10, nbfIn: 10 })
    t.equal(await restStatus(app.url, within), 200, 'iat and nbf within the clock skew are accepted')
    t.equal(await restStatus(app.url, await issuer.sign({ org: 'acme' }), 'bad key with spaces'), 401, 'a malformed device key')
  })

  await t.test('the built-in accounts work beside it, and never meet an external identity', async (t) => {
    const email = `shared-${randomUUID().slice(0, 8)}@example.test`
    const owner = await registerOwner(app.url, { email })
    const external = await issuer.sign({ sub: owner.user.id, org: owner.organization.id, role: 'owner', email })
    const ext = (await api(app.url, external).get('/api/users/me')).body
    t.not(ext.orgId, owner.organization.id, 'an org claim equal to a built-in org id names a new organization')
    t.not(ext.id, owner.user.id)
    t.equal(ext.email, email, 'the same email is another user')
    const login = await api(app.url).post('/api/auth/login', { email, password: owner.password, device: { name: 'x', platform: 'test' } })
    t.equal(login.status, 200)
    t.equal(login.body.user.id, owner.user.id, 'login finds the built-in user')
    t.equal(await restStatus(app.url, owner.accessToken), 200)
    // A built-in token forged with the provider's claims is still a built-in token: its device is unknown.
    const forged = await new SignJWT({ org: ext.orgId, role: 'owner', dev: randomUUID() })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(ext.id)
      .setIssuer('tasksync')
      .setAudience('tasksync')
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(new TextEncoder().encode(TEST_JWT_SECRET))
    t.equal(await restStatus(app.url, forged), 401)
  })

  await t.test('a provisioned organization is as isolated as any other: cross-org probes answer 404', async (t) => {
    const a = await issuer.sign({ org: 'initech', role: 'owner' })
    const b = await issuer.sign({ org: 'globex', role: 'owner' })
    const builtin = await registerOwner(app.url)
    const taskA = (await api(app.url, a).post('/api/tasks', { title: 'initech only' })).body
    const taskBuiltin = (await api(app.url, builtin.accessToken).post('/api/tasks', { title: 'built-in only' })).body
    for (const [who, token, task] of [
      ['globex → initech', b, taskA],
      ['built-in → initech', builtin.accessToken, taskA],
      ['initech → built-in', a, taskBuiltin],
    ] as const) {
      t.equal((await api(app.url, token).get(`/api/tasks/${task.id}`)).status, 404, `${who}: read`)
      t.equal((await api(app.url, token).patch(`/api/tasks/${task.id}`, { title: 'x' })).status, 404, `${who}: write`)
      t.equal((await api(app.url, token).get(`/api/tasks/${task.id}/ops`)).status, 404, `${who}: op log`)
      t.notOk((await api(app.url, token).get('/api/tasks')).body.items.some((x: { id: string }) => x.id === task.id), `${who}: list`)
    }
    const users = (await api(app.url, b).get('/api/users')).body.items
    t.equal(users.length, 1, 'globex sees only its own user')
    // People and devices of a provisioned organization are out of reach of the others, and the other way round.
    const initechOwner = (await api(app.url, a).get('/api/users/me')).body
    const initechDevice = (await api(app.url, a).get('/api/devices')).body.items[0]
    for (const [who, token] of [['globex', b], ['built-in', builtin.accessToken]] as const) {
      t.equal((await api(app.url, token).patch(`/api/users/${initechOwner.id}`, { displayName: 'x' })).status, 404, `${who} → initech user`)
      t.equal((await api(app.url, token).delete(`/api/users/${initechOwner.id}`)).status, 404, `${who} → initech user removal`)
      t.equal((await api(app.url, token).delete(`/api/devices/${initechDevice.id}`)).status, 404, `${who} → initech device`)
      t.equal((await api(app.url, token).get(`/api/tasks/${taskA.id}/comments`)).status, 404, `${who} → initech comments`)
    }
    t.equal((await api(app.url, a).delete(`/api/users/${builtin.user.id}`)).status, 404, 'initech → built-in user')
    t.equal((await api(app.url, a).delete(`/api/devices/${builtin.device.id}`)).status, 404, 'initech → built-in device')
    t.equal(await restStatus(app.url, a), 200, 'initech still signs in')
  })
})

t.test('key rotation mid-test: a new kid is fetched and accepted, a removed one refused', async (t) => {
  const issuer = await startIssuer(t)
  const app = await startTestApp(t, { redis: false, env: issuerEnv(issuer) })
  const oldKey = issuer.current
  const old = await issuer.sign({ org: 'acme' })
  t.equal(await restStatus(app.url, old), 200)
  const fetchesBefore = issuer.fetches

  // Rotation with overlap: the new key is published beside the old one and signs from now on.
  const newKey = await issuer.newKey('ES256')
  issuer.publish([newKey, oldKey])
  const fresh = await issuer.sign({ org: 'acme' })
  t.equal(await restStatus(app.url, fresh), 200, 'an unknown kid makes the server fetch the JWKS again')
  t.ok(issuer.fetches > fetchesBefore)
  t.equal(await wsStatus(app.url, fresh), 101)
  t.equal(await restStatus(app.url, old), 200, 'during the overlap both keys verify')

  // The old key is withdrawn: once the cached set is refreshed, its tokens are refused.
  issuer.publish([newKey])
  await until(async () => (await restStatus(app.url, old)) === 401, 'the withdrawn key to be refused')
  t.equal(await wsStatus(app.url, old), 401)
  t.equal(await restStatus(app.url, fresh), 200, 'the new key still verifies')
})
