/**
 * Issue #11, defect 5: a correctly signed token is trusted no further than the
 * database agrees. Its user, organization and device must belong together and
 * be active, and it must not claim to be issued (iat) or valid (nbf) in the
 * future beyond a small clock skew.
 */
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { SignJWT } from 'jose'
import postgres from 'postgres'
import WebSocket from 'ws'
import { startTestApp, api, registerOwner, addMember, TEST_JWT_SECRET } from '../helpers/app.js'

const secret = new TextEncoder().encode(TEST_JWT_SECRET)

interface Claims {
  sub: string
  org: string
  dev: string
  role?: string
  iat?: number
  nbf?: number
  exp?: number
}

/** A token signed with the deployment's real secret: only its claims are forged. */
async function sign(c: Claims): Promise<string> {
  const now = Math.floor(Date.now() / 1000)
  const jwt = new SignJWT({ org: c.org, dev: c.dev, role: c.role ?? 'owner', ...(c.nbf !== undefined ? { nbf: c.nbf } : {}) })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(c.sub)
    .setIssuer('tasksync')
    .setAudience('tasksync')
    .setIssuedAt(c.iat ?? now)
    .setExpirationTime(c.exp ?? now + 600)
  return jwt.sign(secret)
}

function upgradeStatus(url: string, token: string): Promise<number> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`${url.replace('http', 'ws')}/ws?access_token=${token}`)
    ws.on('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0)
      ws.terminate()
    })
    ws.on('open', () => {
      resolve(101)
      ws.close()
    })
    ws.on('error', () => {})
  })
}

t.test('user, organization and device must belong together', async (t) => {
  const { url, databaseUrl } = await startTestApp(t, { redis: false })
  const a = await registerOwner(url)
  const aMember = await addMember(url, a.accessToken, 'member')
  const b = await registerOwner(url)
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {} })
  t.teardown(() => sql.end())

  const forged: Array<[string, Claims]> = [
    ['an unknown sub on a real device', { sub: randomUUID(), org: a.organization.id, dev: a.device.id }],
    ['the sub of a user of another organization', { sub: b.user.id, org: a.organization.id, dev: a.device.id }],
    ['the sub of another user of the same organization', { sub: aMember.user.id, org: a.organization.id, dev: a.device.id }],
    ["a device of another organization", { sub: a.user.id, org: a.organization.id, dev: b.device.id }],
    ['an organization that is not the user’s', { sub: a.user.id, org: b.organization.id, dev: a.device.id }],
  ]
  for (const [why, claims] of forged) {
    const token = await sign(claims)
    const c = api(url, token)
    const taskId = randomUUID()
    const reads = [await c.get('/api/users/me'), await c.get('/api/tasks'), await c.get('/api/projects'), await c.get('/api/sync/pull')]
    const writes = [
      await c.post('/api/tasks', { id: taskId, title: 'forged' }),
      await c.post('/api/projects', { name: 'forged' }),
      await c.post('/api/sync/push', { clientId: randomUUID(), mutations: [{ seq: 1, kind: 'create', taskId: randomUUID(), task: { title: 'x' } }] }),
    ]
    t.same([...reads, ...writes].map((r) => r.status), [401, 401, 401, 401, 401, 401, 401], `${why}: every route answers 401`)
    t.equal(reads[1].body.error.code, 'unauthorized', why)
    t.equal(await upgradeStatus(url, token), 401, `${why}: no socket`)
    const [{ n }] = await sql`select count(*)::int as n from task_ops where task_id = ${taskId}`
    t.equal(n, 0, `${why}: nothing recorded`)
  }
  const [{ n }] = await sql`select count(*)::int as n from projects where name = 'forged'`
  t.equal(n, 0, 'no project was created by a forged token')

  const genuine = await sign({ sub: a.user.id, org: a.organization.id, dev: a.device.id })
  t.equal((await api(url, genuine).get('/api/tasks')).status, 200, 'the same claims, rightly matched, are accepted')
})

t.test('a deactivated user is refused even when a device was left unrevoked', async (t) => {
  const { url, databaseUrl } = await startTestApp(t, { redis: false })
  const a = await registerOwner(url)
  const m = await addMember(url, a.accessToken, 'member')
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {} })
  t.teardown(() => sql.end())
  // What a crash between the deactivation and the device revocations would leave.
  await sql`update users set deactivated_at = now() where id = ${m.user.id}`
  t.equal((await api(url, m.accessToken).get('/api/tasks')).status, 401)
  t.equal(await upgradeStatus(url, m.accessToken), 401)
})

t.test('iat and nbf in the future beyond the clock skew are refused', async (t) => {
  const { url } = await startTestApp(t, { redis: false, env: { JWT_CLOCK_SKEW_S: '30' } })
  const a = await registerOwner(url)
  const now = Math.floor(Date.now() / 1000)
  const base = { sub: a.user.id, org: a.organization.id, dev: a.device.id }
  const status = async (c: Partial<Claims>) => (await api(url, await sign({ ...base, ...c })).get('/api/tasks')).status
  t.equal(await status({ iat: now + 3600 }), 401, 'issued an hour from now')
  t.equal(await status({ iat: now + 120, exp: now + 720 }), 401, 'issued two minutes from now')
  t.equal(await status({ nbf: now + 120 }), 401, 'valid only two minutes from now')
  t.equal(await status({ iat: now + 10 }), 200, 'a clock ten seconds ahead is tolerated')
  t.equal(await status({ nbf: now + 10 }), 200, 'an nbf ten seconds ahead too')
  t.equal(await status({ iat: now - 10, exp: now - 1 }), 401, 'expiry is not stretched by the skew')
  t.equal(await upgradeStatus(url, await sign({ ...base, iat: now + 3600 })), 401, 'the socket refuses it too')
})

t.test('two instances: a removed user is refused on the other instance as soon as it hears', async (t) => {
  const a = await startTestApp(t)
  const b = await startTestApp(t, { databaseUrl: a.databaseUrl, redisPrefix: a.redisPrefix })
  const owner = await registerOwner(a.url)
  const m = await addMember(a.url, owner.accessToken, 'member')
  t.equal((await api(b.url, m.accessToken).get('/api/tasks')).status, 200, "b caches the member's principal as active")
  const heard = new Promise<void>((resolve) => b.app.tokens.onDeviceRevoked((_org, dev) => dev === m.device.id && resolve()))
  t.equal((await api(a.url, owner.accessToken).delete(`/api/users/${m.user.id}`)).status, 204)
  await heard
  t.equal((await api(b.url, m.accessToken).get('/api/tasks')).status, 401)
})
