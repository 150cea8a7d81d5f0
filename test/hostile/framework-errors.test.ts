/**
 * Issue #11, defect 1: errors raised by fastify or Node before a route runs
 * (a URL that does not decode, an over-long path parameter, a malformed or
 * oversized request head) leave in the contract's one shape with one of its
 * statuses, never fastify's own `{error, code: FST_…, statusCode}`.
 */
import t, { type Test } from 'tap'
import { startTestApp, api, registerOwner } from '../helpers/app.js'
import { rawRequest } from '../helpers/raw-http.js'

const CONTRACT_STATUSES = new Set([400, 401, 403, 404, 408, 409, 410, 413, 422, 429, 500, 503])

function assertContractError(t: Test, status: number, body: any, expectedStatus: number, code: string, why: string) {
  t.equal(status, expectedStatus, `${why}: status`)
  t.ok(CONTRACT_STATUSES.has(status), `${why}: a status of the contract`)
  t.same(Object.keys(body ?? {}), ['error'], `${why}: only {error}`)
  t.equal(body?.error?.code, code, `${why}: code`)
  t.type(body?.error?.message, 'string', `${why}: message`)
  t.notMatch(JSON.stringify(body), /FST_|statusCode/, `${why}: nothing of fastify's shape`)
}

t.test('router errors: an undecodable URL and an over-long parameter', async (t) => {
  const { url } = await startTestApp(t, { redis: false })
  const owner = await registerOwner(url)
  const c = api(url, owner.accessToken)
  const bad = await c.get('/api/tasks/%ED%A0%80')
  assertContractError(t, bad.status, bad.body, 400, 'bad_request', 'a lone surrogate in the path')
  const half = await c.get('/api/tasks/%E0%A4%A')
  assertContractError(t, half.status, half.body, 400, 'bad_request', 'a truncated escape')
  const long = await c.get('/api/tasks/' + 'A'.repeat(600))
  assertContractError(t, long.status, long.body, 400, 'bad_request', 'a 600-character id')
  const longNoToken = await api(url).get('/api/tasks/' + 'A'.repeat(600))
  t.equal(longNoToken.status, 400, 'the router answers before authentication: the same answer without a token')
})

t.test('Node parser errors: a malformed request line, a bad header, an oversized head', async (t) => {
  const { url } = await startTestApp(t, { redis: false })
  const { port } = new URL(url)
  const cases: Array<[string, string, number, string]> = [
    ['a malformed request line', 'NOT HTTP AT ALL\r\n\r\n', 400, 'bad_request'],
    ['a header without a colon', 'GET /health HTTP/1.1\r\nHost: x\r\nbroken header\r\n\r\n', 400, 'bad_request'],
    ['two content lengths', 'POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n{}', 400, 'bad_request'],
    ['a 100 KiB header', `GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(100 * 1024)}\r\n\r\n`, 413, 'too_large'],
  ]
  for (const [why, raw, status, code] of cases) {
    const res = await rawRequest(Number(port), raw)
    t.ok(res.closed, `${why}: the connection is closed after the answer`)
    assertContractError(t, res.status, res.json, status, code, why)
  }
})
