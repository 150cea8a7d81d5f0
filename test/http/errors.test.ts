import t from 'tap'
import { startTestApp, api, registerOwner } from '../helpers/app.js'
import { toErrorBody } from '../../src/http/errors.js'
import { TaskSyncError } from '../../src/protocol/errors.js'

t.test('transport mistakes get the one error shape, never a 5xx', async (t) => {
  const { url } = await startTestApp(t, { redis: false, env: { HTTP_BODY_LIMIT_BYTES: '4096' } })
  const owner = await registerOwner(url)
  const c = api(url, owner.accessToken)
  const cases: Array<[string, Promise<{ status: number; body: any }>, number, string]> = [
    ['malformed JSON', c.request('POST', '/api/projects', '{"name":', { 'content-type': 'application/json' }), 400, 'bad_request'],
    ['empty JSON body', c.request('POST', '/api/projects', '', { 'content-type': 'application/json' }), 400, 'bad_request'],
    ['JSON array', c.post('/api/projects', [1]), 400, 'bad_request'],
    ['JSON null', c.request('POST', '/api/projects', 'null', { 'content-type': 'application/json' }), 400, 'bad_request'],
    ['unsupported media type', c.request('POST', '/api/projects', 'name=x', { 'content-type': 'application/x-www-form-urlencoded' }), 400, 'bad_request'],
    ['prototype pollution', c.request('POST', '/api/projects', '{"__proto__":{"x":1},"name":"a"}', { 'content-type': 'application/json' }), 400, 'bad_request'],
    ['body over the limit', c.post('/api/projects', { name: 'x'.repeat(5000) }), 413, 'too_large'],
    ['unknown route', c.get('/api/nothing-here'), 404, 'not_found'],
    ['unknown method', c.request('PUT', '/api/projects'), 404, 'not_found'],
    ['malformed uuid in a path', c.patch('/api/projects/123', { name: 'x' }), 400, 'bad_request'],
    ['non-integer query', c.get('/api/projects?limit=ten'), 400, 'bad_request'],
  ]
  for (const [why, pending, status, code] of cases) {
    const res = await pending
    t.equal(res.status, status, why)
    t.equal(res.body?.error?.code, code, why)
    t.type(res.body?.error?.message, 'string', why)
  }
})

t.test('storage down: 503 unavailable, and /api/health says so', async (t) => {
  const { url, app } = await startTestApp(t, { redis: false })
  const owner = await registerOwner(url)
  await app.database.close()
  const res = await api(url, owner.accessToken).get('/api/projects')
  t.equal(res.status, 503)
  t.equal(res.body.error.code, 'unavailable')
  const login = await api(url).post('/api/auth/login', { email: owner.user.email, password: owner.password, device: { name: 'x', platform: 'y' } })
  t.equal(login.status, 503, 'even before a token is involved')
  const health = await api(url).get('/api/health')
  t.equal(health.status, 503)
  t.match(health.body, { status: 'unavailable', database: { status: 'down' } })
  t.equal((await api(url).get('/health')).status, 200, 'liveness stays cheap: the process is alive')
})

t.test('CORS preflight and security headers', async (t) => {
  const { url } = await startTestApp(t, { redis: false, env: { CORS_ORIGIN: 'https://app.example.test' } })
  const pre = await fetch(url + '/api/projects', {
    method: 'OPTIONS',
    headers: { origin: 'https://app.example.test', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' },
  })
  t.equal(pre.status, 204)
  t.equal(pre.headers.get('access-control-allow-origin'), 'https://app.example.test')
  t.match(pre.headers.get('access-control-allow-headers') ?? '', /Authorization/)
  const foreign = await fetch(url + '/health', { headers: { origin: 'https://evil.example.test' } })
  t.equal(foreign.headers.get('access-control-allow-origin'), null, 'other origins are not allowed')
  t.equal(foreign.headers.get('x-content-type-options'), 'nosniff')
})

t.test('the classifier: driver errors by meaning, everything else internal', async (t) => {
  t.match(toErrorBody(new TaskSyncError('rev_too_old', 'rebase', { rev: 3 })), { status: 409, body: { error: { code: 'rev_too_old', details: { rev: 3 } } } })
  t.match(toErrorBody({ code: 'ECONNREFUSED' }), { status: 503, body: { error: { code: 'unavailable' } } })
  t.match(toErrorBody({ message: 'query failed', cause: { code: '57P01' } }), { status: 503 }, 'through a wrapper')
  t.match(toErrorBody({ cause: { code: '22P02' } }), { status: 400, body: { error: { code: 'bad_request' } } }, 'a value that does not fit its column')
  t.match(toErrorBody({ cause: { code: '23505' } }), { status: 409, body: { error: { code: 'already_exists' } } })
  t.match(toErrorBody(Object.assign(new Error('x'), { statusCode: 429 })), { status: 429, body: { error: { code: 'rate_limited' } } })
  t.match(toErrorBody(Object.assign(new Error('teapot'), { statusCode: 418 })), { status: 400, body: { error: { code: 'bad_request' } } })
  const internal = toErrorBody(new Error('secret detail'))
  t.same(internal, { status: 500, body: { error: { code: 'internal', message: 'internal error' } } }, 'no detail leaks')
})
