/**
 * Every operation of /docs/json that needs a token × every bad token: none, a
 * malformed header, garbage, `alg: none`, another key, expired, issued or valid
 * only in the future, another issuer or audience, an unknown or foreign `sub`, a
 * revoked device, a removed user. Each answer is 401 `unauthorized`, documented,
 * and nothing is committed; the same request with the good token is not 401.
 */
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { SignJWT } from 'jose'
import { api, addMember, TEST_JWT_SECRET } from '../helpers/app.js'
import { fillPath, undocumented } from '../helpers/openapi.js'
import { baselineOf } from './arbitrary.js'
import { buildWorld, type World } from './world.js'
import { fire, queryOf } from './probe.js'

interface Claims {
  sub: string
  org: string
  dev: string
  role?: string
  iss?: string
  aud?: string
  iat?: number
  nbf?: number
  exp?: number
}

async function sign(c: Claims, secret = TEST_JWT_SECRET): Promise<string> {
  const now = Math.floor(Date.now() / 1000)
  return new SignJWT({ org: c.org, dev: c.dev, role: c.role ?? 'owner', ...(c.nbf !== undefined ? { nbf: c.nbf } : {}) })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(c.sub)
    .setIssuer(c.iss ?? 'tasksync')
    .setAudience(c.aud ?? 'tasksync')
    .setIssuedAt(c.iat ?? now)
    .setExpirationTime(c.exp ?? now + 600)
    .sign(new TextEncoder().encode(secret))
}

const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url')

/** Name → Authorization header value (undefined: no header at all). */
async function badAuthorizations(world: World): Promise<Array<[string, string | undefined]>> {
  const { a, b } = world
  const now = Math.floor(Date.now() / 1000)
  const mine = { sub: a.owner.user.id, org: a.owner.organization.id, dev: a.owner.device.id }
  const payload = { ...mine, role: 'owner', iss: 'tasksync', aud: 'tasksync', iat: now, exp: now + 600 }

  // A device of A's member, revoked; and a member of A, removed.
  const revoked = await addMember(world.url, a.owner.accessToken, 'member')
  await api(world.url, a.owner.accessToken).delete(`/api/devices/${revoked.device.id}`)
  const removed = await addMember(world.url, a.owner.accessToken, 'member')
  await api(world.url, a.owner.accessToken).delete(`/api/users/${removed.user.id}`)

  return [
    ['no token', undefined],
    ['another scheme', `Basic ${Buffer.from('a:b').toString('base64')}`],
    ['an empty bearer', 'Bearer '],
    ['garbage', 'Bearer garbage'],
    ['three garbage segments', 'Bearer a.b.c'],
    ['alg none', `Bearer ${b64({ alg: 'none', typ: 'JWT' })}.${b64(payload)}.`],
    ['another key', `Bearer ${await sign(mine, 'another-secret-another-secret-another-secret')}`],
    ['a tampered payload', `Bearer ${(await sign({ ...mine, role: 'viewer' })).replace(/\.[^.]+\./, `.${b64(payload)}.`)}`],
    ['expired', `Bearer ${await sign({ ...mine, iat: now - 1000, exp: now - 10 })}`],
    ['issued in the future', `Bearer ${await sign({ ...mine, iat: now + 3600, exp: now + 7200 })}`],
    ['valid only in the future', `Bearer ${await sign({ ...mine, nbf: now + 3600 })}`],
    ['another issuer', `Bearer ${await sign({ ...mine, iss: 'evil' })}`],
    ['another audience', `Bearer ${await sign({ ...mine, aud: 'evil' })}`],
    ['an unknown sub', `Bearer ${await sign({ ...mine, sub: randomUUID() })}`],
    ['the sub of another organization', `Bearer ${await sign({ ...mine, sub: b.owner.user.id })}`],
    ['another organization with its own device', `Bearer ${await sign({ ...mine, org: b.owner.organization.id })}`],
    ['an unknown role', `Bearer ${await sign({ ...mine, role: 'root' })}`],
    ['a revoked device', `Bearer ${revoked.accessToken}`],
    ['a removed user', `Bearer ${removed.accessToken}`],
  ]
}

t.test('every operation that needs a token × every bad token: 401, documented, nothing committed', async (t) => {
  const world = await buildWorld(t)
  const bad = await badAuthorizations(world)
  const secured = world.ops.filter((o) => o.secured)
  t.ok(secured.length >= 29, `${secured.length} operations need a token`)
  const digest = await world.fingerprint()
  let cases = 0
  for (const op of secured) {
    const ids = world.fieldIds(op, world.a)
    const path = fillPath(op.path, world.pathIds(op, world.a))
    const query = queryOf(Object.fromEntries(op.parameters.filter((p) => p.in === 'query' && p.required).map((p) => [p.name, baselineOf(p.schema, ids, p.name)])))
    const body = op.body ? JSON.stringify(baselineOf(op.body, ids)) : undefined
    const problems: string[] = []
    for (const [why, authorization] of bad) {
      cases++
      const answer = await fire(world, op, { why, path, query, body, headers: authorization === undefined ? {} : { authorization } })
      const wrong = undocumented(op, answer)
      if (answer.status !== 401) problems.push(`${why}: ${answer.status} ${answer.text.slice(0, 120)}`)
      else if ((answer.body as any)?.error?.code !== 'unauthorized') problems.push(`${why}: code ${(answer.body as any)?.error?.code}`)
      if (wrong) problems.push(`${why}: ${wrong}`)
    }
    t.same(problems, [], `${op.key}: ${bad.length} bad tokens, 401 each`)
  }
  t.equal(await world.fingerprint(), digest, 'no bad token committed anything')
  // The control: the same requests with the good token get past authentication.
  for (const op of secured.filter((o) => o.method === 'GET')) {
    const ids = world.fieldIds(op, world.a)
    const query = queryOf(Object.fromEntries(op.parameters.filter((p) => p.in === 'query' && p.required).map((p) => [p.name, baselineOf(p.schema, ids, p.name)])))
    const answer = await fire(world, op, { why: 'good token', path: fillPath(op.path, world.pathIds(op, world.a)), query, token: world.a.owner.accessToken })
    t.not(answer.status, 401, `${op.key} with the good token: ${answer.status}`)
  }
  t.comment(`${cases} requests: ${secured.length} operations × ${bad.length} bad tokens`)
})
