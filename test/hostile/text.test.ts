/**
 * Issue #11, defect 3: text that is not Unicode is refused, never replaced by
 * U+FFFD. A lone surrogate (or U+0000) in any request string outside task
 * content is 400 bad_request naming the field; bytes that are not UTF-8 make
 * the whole JSON body 400; task content keeps the op type's 422 invalid_op,
 * per mutation in a push, as on the socket. Nothing is stored by a refusal.
 */
import t from 'tap'
import { randomUUID } from 'node:crypto'
import postgres from 'postgres'
import { startTestApp, api, registerOwner } from '../helpers/app.js'
import { rawRequest } from '../helpers/raw-http.js'

const LONE_HIGH = 'pass\ud800word'
const LONE_LOW = 'pass\udc00word'

t.test('lone surrogates outside task content: 400 naming the field, nothing stored', async (t) => {
  const { url, databaseUrl } = await startTestApp(t, { redis: false })
  const owner = await registerOwner(url)
  const c = api(url, owner.accessToken)
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {} })
  t.teardown(() => sql.end())
  const project = (await c.post('/api/projects', { name: 'P' })).body
  const task = (await c.post('/api/tasks', { title: 'T' })).body
  const comment = (await c.post(`/api/tasks/${task.id}/comments`, { body: 'hello' })).body
  const device = { name: 'phone', platform: 'ios' }
  const reg = { orgName: 'Org', email: `x-${randomUUID()}@example.test`, password: 'long enough password', displayName: 'X' }
  const cases: Array<[string, string, string, unknown, string]> = [
    ['register password', 'POST', '/api/auth/register', { ...reg, password: LONE_HIGH }, '/password'],
    ['register org name', 'POST', '/api/auth/register', { ...reg, orgName: 'Acme\udfff' }, '/orgName'],
    ['register display name', 'POST', '/api/auth/register', { ...reg, displayName: '\ud83dAda' }, '/displayName'],
    ['register device platform', 'POST', '/api/auth/register', { ...reg, device: { name: 'a', platform: 'ios\udc00' } }, '/device/platform'],
    ['login password', 'POST', '/api/auth/login', { email: owner.user.email, password: LONE_LOW, device }, '/password'],
    ['login device name', 'POST', '/api/auth/login', { email: owner.user.email, password: owner.password, device: { name: '\ud800', platform: 'x' } }, '/device/name'],
    ['new user password', 'POST', '/api/users', { email: `u-${randomUUID()}@example.test`, password: LONE_HIGH, displayName: 'U', role: 'member' }, '/password'],
    ['user display name', 'PATCH', `/api/users/${owner.user.id}`, { displayName: 'Ada\ud800' }, '/displayName'],
    ['device name', 'POST', '/api/devices', { name: 'watch\udbff', platform: 'wearos' }, '/name'],
    ['project name', 'POST', '/api/projects', { name: 'Roadmap\ud800' }, '/name'],
    ['project rename', 'PATCH', `/api/projects/${project.id}`, { name: '\udc00' }, '/name'],
    ['comment body', 'POST', `/api/tasks/${task.id}/comments`, { body: 'hi \ud800 there' }, '/body'],
    ['comment edit', 'PATCH', `/api/comments/${comment.id}`, { body: 'edited \udc00' }, '/body'],
    ['a NUL in a project name', 'POST', '/api/projects', { name: 'a\u0000b' }, '/name'],
    ['an unknown key that is not Unicode', 'POST', '/api/projects', { name: 'ok', ['k\ud800']: 1 }, '/k\ud800'],
  ]
  for (const [why, method, path, body, field] of cases) {
    const res = await c.request(method, path, JSON.stringify(body), { 'content-type': 'application/json' })
    t.equal(res.status, 400, `${why}: 400`)
    t.equal(res.body?.error?.code, 'bad_request', `${why}: bad_request`)
    t.ok(res.body?.error?.details?.some((d: any) => d.in === 'body' && d.path === field), `${why}: names ${field}`)
  }
  const q = await c.get('/api/tasks?q=a%00b')
  t.equal(q.status, 400, 'a NUL in a query string')
  t.match(q.body.error.details, [{ in: 'querystring', path: '/q' }])

  t.equal((await sql`select count(*)::int as n from organizations`)[0].n, 1, 'no organization was registered')
  t.equal((await sql`select count(*)::int as n from projects`)[0].n, 1, 'no project was created')
  t.same((await sql`select name from projects`).map((r) => r.name), ['P'], 'nor renamed')
  t.same((await sql`select body from comments`).map((r) => r.body), ['hello'], 'no comment created or edited')
  t.equal((await sql`select count(*)::int as n from devices`)[0].n, 1, 'no device added')
  t.equal((await sql`select count(*)::int as n from users where display_name like '%' || chr(65533) || '%'`)[0].n, 0, 'no U+FFFD anywhere')
})

t.test('two passwords that differ only in unpaired surrogates are not one password', async (t) => {
  const { url } = await startTestApp(t, { redis: false })
  const email = `s-${randomUUID()}@example.test`
  const reg = await api(url).post('/api/auth/register', { orgName: 'O', email, password: LONE_HIGH, displayName: 'S' })
  t.equal(reg.status, 400, 'the password cannot be registered')
  const ok = await api(url).post('/api/auth/register', { orgName: 'O', email, password: 'pass\ufffdword', displayName: 'S' })
  t.equal(ok.status, 201, 'a real U+FFFD is a character like any other')
  const device = { name: 'a', platform: 'b' }
  t.equal((await api(url).post('/api/auth/login', { email, password: LONE_LOW, device })).status, 400, 'a lone surrogate never matches it')
  t.equal((await api(url).post('/api/auth/login', { email, password: 'pass\ufffdword', device })).status, 200)
})

t.test('raw bytes that are not UTF-8: 400 for the whole body, nothing stored', async (t) => {
  const { url, databaseUrl } = await startTestApp(t, { redis: false })
  const owner = await registerOwner(url)
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {} })
  t.teardown(() => sql.end())
  const { port } = new URL(url)
  const send = (path: string, body: Buffer) =>
    rawRequest(Number(port), [
      `POST ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${owner.accessToken}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`,
      body,
    ])
  const json = (prefix: string, bytes: number[], suffix: string) => Buffer.concat([Buffer.from(prefix), Buffer.from(bytes), Buffer.from(suffix)])
  for (const [why, bytes] of [
    ['0xFF', [0xff]],
    ['an overlong NUL (C0 80)', [0xc0, 0x80]],
    ['an encoded surrogate (ED A0 80)', [0xed, 0xa0, 0x80]],
    ['a truncated sequence (E2 82)', [0xe2, 0x82]],
  ] as const) {
    const res = await send('/api/projects', json('{"name":"x', [...bytes], 'y"}'))
    t.equal(res.status, 400, `${why}: 400`)
    t.equal(res.json?.error?.code, 'bad_request', why)
    t.match(res.json?.error?.details, [{ in: 'body', path: '/name' }], `${why}: names the field`)
    const task = await send('/api/tasks', json('{"title":"', [...bytes], '"}'))
    t.equal(task.status, 400, `${why}: in task content too (the body is not JSON text)`)
  }
  const push = await send(
    '/api/sync/push',
    json(`{"clientId":"${randomUUID()}","mutations":[{"seq":1,"kind":"create","taskId":"${randomUUID()}","task":{"title":"`, [0xff], '"}}]}'),
  )
  t.equal(push.status, 400, 'a push with such bytes is refused whole')
  t.equal((await sql`select count(*)::int as n from projects`)[0].n, 0)
  t.equal((await sql`select count(*)::int as n from tasks`)[0].n, 0)
})

t.test('task content keeps the op type\'s 422, per mutation in a push', async (t) => {
  const { url, databaseUrl } = await startTestApp(t, { redis: false })
  const owner = await registerOwner(url)
  const c = api(url, owner.accessToken)
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {} })
  t.teardown(() => sql.end())
  const created = await c.post('/api/tasks', { title: 'a\ud800' })
  t.equal(created.status, 422)
  t.equal(created.body.error.code, 'invalid_op')
  const task = (await c.post('/api/tasks', { title: 'T' })).body
  t.equal((await c.patch(`/api/tasks/${task.id}`, { description: '\udc00' })).status, 422)
  t.equal((await c.patch(`/api/tasks/${task.id}`, { op: { title: [1, '\udc00'] } })).status, 422)
  const push = await c.post('/api/sync/push', {
    clientId: randomUUID(),
    mutations: [
      { seq: 1, kind: 'op', taskId: task.id, baseRev: 1, op: { title: [1, 'x\ud800'] } },
      { seq: 2, kind: 'comment', taskId: task.id, comment: { action: 'create', commentId: randomUUID(), body: 'c\udc00' } },
      { seq: 3, kind: 'op', taskId: task.id, baseRev: 1, op: { title: [1, '!'] } },
    ],
  })
  t.equal(push.status, 200)
  t.match(push.body.results, [
    { seq: 1, status: 'rejected', error: { code: 'invalid_op' } },
    { seq: 2, status: 'rejected', error: { code: 'invalid_op' } },
    { seq: 3, status: 'applied', rev: 2 },
  ])
  t.equal((await sql`select count(*)::int as n from comments`)[0].n, 0, 'the comment with a lone surrogate was not stored')
})
