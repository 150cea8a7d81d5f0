/**
 * Bring-your-own auth across instances and deployments: simultaneous first
 * requests of one identity on two instances provision it once; a second issuer
 * on the same database never meets the first one's users; with AUTH_BUILTIN=false
 * the built-in routes answer a clear `forbidden`; the SDK runs on an identity
 * provider's tokens through getAccessToken.
 */
import t from 'tap'
import { randomUUID } from 'node:crypto'
import WebSocket from 'ws'
import { SignJWT } from 'jose'
import { api, startTestApp, TEST_JWT_SECRET } from '../helpers/app.js'
import { issuerEnv, startIssuer } from '../helpers/issuer.js'
import { TaskSyncClient, type WebSocketConstructor } from '../../src/client/index.js'
import { TestSocket } from '../ws/helpers.js'

t.test('two instances, many first requests at once: one organization, one user, one device', async (t) => {
  const issuer = await startIssuer(t)
  const one = await startTestApp(t, { env: issuerEnv(issuer) })
  const two = await startTestApp(t, { databaseUrl: one.databaseUrl, redisPrefix: one.redisPrefix, env: issuerEnv(issuer) })
  const org = `org-${randomUUID()}`
  const sub = `auth0|${randomUUID()}`
  const tokens = await Promise.all(Array.from({ length: 4 }, (_, i) => issuer.sign({ sub, org, role: 'owner', name: 'Race', iatIn: -i })))
  // REST on both instances and socket upgrades on both, all at once, all first sight.
  const rest = Array.from({ length: 16 }, (_, i) =>
    api([one, two][i % 2].url, tokens[i % tokens.length]).request('GET', '/api/users/me', undefined, { 'x-device-key': 'shared-key' }),
  )
  const sockets = [one, two].map((app, i) => TestSocket.open(app.url, tokens[i], { query: { device_key: 'shared-key' } }))
  const answers = await Promise.all(rest)
  t.same([...new Set(answers.map((a) => a.status))], [200])
  t.equal(new Set(answers.map((a) => a.body.id)).size, 1, 'one user')
  t.equal(new Set(answers.map((a) => a.body.orgId)).size, 1, 'one organization')
  for (const s of await Promise.all(sockets)) s.close()
  const key = { 'x-device-key': 'shared-key' }
  const users = await api(one.url, tokens[0]).request('GET', '/api/users', undefined, key)
  t.equal(users.body.items.length, 1)
  const devices = await api(two.url, tokens[0]).request('GET', '/api/devices', undefined, key)
  t.same(devices.body.items.map((d: { name: string }) => d.name), ['shared-key'], 'one device')
})

t.test('another issuer on the same database: same sub, same org claim, another organization and user', async (t) => {
  const first = await startIssuer(t)
  const second = await startIssuer(t)
  const a = await startTestApp(t, { env: issuerEnv(first) })
  const b = await startTestApp(t, { databaseUrl: a.databaseUrl, env: issuerEnv(second) })
  const sub = 'user-42'
  const meA = (await api(a.url, await first.sign({ sub, org: 'acme', role: 'owner' })).get('/api/users/me')).body
  const meB = (await api(b.url, await second.sign({ sub, org: 'acme', role: 'owner' })).get('/api/users/me')).body
  t.not(meA.id, meB.id)
  t.not(meA.orgId, meB.orgId)
  // And each deployment refuses the other's tokens.
  t.equal((await api(a.url, await second.sign({ sub, org: 'acme' })).get('/api/users/me')).status, 401)
  t.equal((await api(b.url, await first.sign({ sub, org: 'acme' })).get('/api/users/me')).status, 401)
  const taskA = (await api(a.url, await first.sign({ sub, org: 'acme', role: 'owner' })).post('/api/tasks', { title: 'first issuer' })).body
  t.equal((await api(b.url, await second.sign({ sub, org: 'acme', role: 'owner' })).get(`/api/tasks/${taskA.id}`)).status, 404)
})

t.test('AUTH_BUILTIN=false: built-in routes answer forbidden, tasksync-signed tokens are refused, the provider\'s work (AUTH_DEFAULT_ROLE=none)', async (t) => {
  const issuer = await startIssuer(t)
  const app = await startTestApp(t, { redis: false, env: issuerEnv(issuer, { AUTH_BUILTIN: 'false', AUTH_DEFAULT_ROLE: 'none' }) })
  const refusedRoutes: Array<[string, object]> = [
    ['/api/auth/register', { orgName: 'x', email: 'x@example.test', password: 'long enough password', displayName: 'x' }],
    ['/api/auth/login', { email: 'x@example.test', password: 'long enough password', device: { name: 'x', platform: 'x' } }],
    ['/api/auth/refresh', { refreshToken: 'whatever' }],
  ]
  for (const [path, body] of refusedRoutes) {
    const res = await api(app.url).post(path, body)
    t.equal(res.status, 403, path)
    t.match(res.body, { error: { code: 'forbidden', message: /AUTH_BUILTIN=false/, details: { reason: 'builtin_auth_disabled' } } }, path)
  }
  const owner = await issuer.sign({ org: 'acme', role: 'owner' })
  const me = await api(app.url, owner).get('/api/users/me')
  t.equal(me.status, 200)
  const add = await api(app.url, owner).post('/api/users', { email: 'y@example.test', password: 'long enough password', displayName: 'y', role: 'member' })
  t.equal(add.status, 403, 'no password users nobody could log in as')
  t.equal(add.body.error.details.reason, 'builtin_auth_disabled')
  // A token tasksync itself would have signed, naming the provisioned identity.
  const devices = (await api(app.url, owner).get('/api/devices')).body.items
  const own = await new SignJWT({ org: me.body.orgId, role: 'owner', dev: devices[0].id })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(me.body.id)
    .setIssuer('tasksync')
    .setAudience('tasksync')
    .setIssuedAt()
    .setExpirationTime('5m')
    .sign(new TextEncoder().encode(TEST_JWT_SECRET))
  t.equal((await api(app.url, own).get('/api/users/me')).status, 401)
  // AUTH_DEFAULT_ROLE=none: a valid token whose role maps to nothing gets no role: 403, on REST and /ws.
  const unmapped = await issuer.sign({ org: 'acme', role: 'superuser' })
  const refused = await api(app.url, unmapped).get('/api/users/me')
  t.equal(refused.status, 403)
  t.match(refused.body.error.message, /maps to no tasksync role/)
  const ws = await TestSocket.open(app.url, unmapped).then(() => 101, (err: { status?: number }) => err.status)
  t.equal(ws, 403)
})

t.test("the SDK on an identity provider's tokens: getAccessToken, deviceKey names the install", async (t) => {
  const issuer = await startIssuer(t)
  const app = await startTestApp(t, { redis: false, env: issuerEnv(issuer) })
  const sub = `auth0|${randomUUID()}`
  let asked = 0
  const make = (deviceKey?: string) => {
    const c = new TaskSyncClient({
      url: app.url,
      deviceKey,
      getAccessToken: async () => {
        asked++
        return issuer.sign({ sub, org: 'sdk-org', role: 'member', name: 'SDK user' })
      },
      WebSocket: WebSocket as unknown as WebSocketConstructor,
    })
    t.teardown(() => c.close())
    return c
  }
  const a = make('laptop-1')
  const b = make()
  await a.connect()
  await b.connect()
  const ta = a.createTask({ title: 'made with an external token' })
  await a.whenSynced({ timeoutMs: 10_000 })
  const tb = await b.task(ta.id)
  t.equal(tb.snapshot.title, 'made with an external token')
  tb.submit({ priority: { set: 3 } })
  await b.whenSynced({ timeoutMs: 10_000 })
  t.ok(asked >= 2)
  const token = await issuer.sign({ sub, org: 'sdk-org', role: 'member' })
  const server = await api(app.url, token).get(`/api/tasks/${ta.id}`)
  t.equal(server.status, 200)
  t.equal(server.body.priority, 3)
  const devices = (await api(app.url, token).get('/api/devices')).body.items.map((d: { name: string }) => d.name).sort()
  // `default`: b, which has no device key, and this test's own REST calls.
  t.same(devices, ['default', 'laptop-1'], 'a device per key')
  const ops = (await api(app.url, token).get(`/api/tasks/${ta.id}/ops`)).body.ops
  t.not(ops[0].deviceId, ops[1].deviceId, 'the two edits name the two devices')
  // The SDK learned the tasksync user id (the token's sub is the provider's): a comment shows it at once.
  const me = (await api(app.url, token).get('/api/users/me')).body
  const comment = tb.addComment('written before the server answers')
  t.equal(comment.authorId, me.id)
  await b.whenSynced({ timeoutMs: 10_000 })
})
