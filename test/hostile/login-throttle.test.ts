/**
 * Login is throttled per account as well as per address: failures spread over
 * many addresses and two instances still lock the account, briefly, for every
 * device but the owner's own; right and wrong passwords read the same while it
 * is locked; the lock is short and a success clears the count.
 */
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { startTestApp, registerOwner } from '../helpers/app.js'
import { lockSeconds } from '../../src/auth/login-throttle.js'

const env = { TRUST_PROXY: 'true', LOGIN_ACCOUNT_MAX_FAILURES: '3', LOGIN_ACCOUNT_LOCK_MAX_S: '2', AUTH_RATE_LIMIT_PER_MIN: '1000' }

async function login(url: string, address: string, body: object) {
  const res = await fetch(`${url}/api/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-forwarded-for': address },
    body: JSON.stringify(body),
  })
  return { status: res.status, body: (await res.json()) as any, retryAfter: Number(res.headers.get('retry-after')) }
}

t.test('lock seconds: none below the threshold, then doubling up to the cap', async (t) => {
  const o = { maxFailures: 3, lockMaxS: 60 }
  t.same([1, 2, 3, 4, 5, 9, 10, 100].map((n) => lockSeconds(n, o)), [0, 0, 1, 2, 4, 60, 60, 60])
})

t.test('a distributed guess at one account, over two instances, is slowed; its owner is not locked out', async (t) => {
  const a = await startTestApp(t, { env })
  const b = await startTestApp(t, { env, databaseUrl: a.databaseUrl, redisPrefix: a.redisPrefix })
  const owner = await registerOwner(a.url)
  const email = owner.user.email
  const newDevice = { name: 'attacker', platform: 'x' }
  // Three failures from three addresses, over both instances.
  for (const [i, url] of [a.url, b.url, a.url].entries()) t.equal((await login(url, `10.0.0.${i + 1}`, { email, password: `wrong ${i}`, device: newDevice })).status, 401)
  const locked = await login(b.url, '10.0.0.99', { email, password: 'wrong again', device: newDevice })
  t.equal(locked.status, 429, 'a fourth address, on the other instance, finds the account locked')
  t.equal(locked.body.error.code, 'rate_limited')
  t.ok(locked.retryAfter >= 1 && locked.retryAfter <= 2, `Retry-After ${locked.retryAfter} s, within LOGIN_ACCOUNT_LOCK_MAX_S`)
  const right = await login(a.url, '10.0.0.100', { email, password: owner.password, device: newDevice })
  t.equal(right.status, 429, 'the right password reads the same while locked: no oracle')
  t.same(right.body.error.code, locked.body.error.code)

  const mine = await login(a.url, '10.0.0.101', { email, password: owner.password, device: { id: owner.device.id, name: 'laptop', platform: 'web' } })
  t.equal(mine.status, 200, "the owner's own device is never locked out")

  // The success cleared the count: a failure now does not lock.
  t.equal((await login(a.url, '10.0.0.1', { email, password: 'wrong', device: newDevice })).status, 401)
  t.equal((await login(b.url, '10.0.0.1', { email, password: owner.password, device: newDevice })).status, 200, 'one failure after a success is not a lock')
})

t.test('the lock is short: past Retry-After the right password works', async (t) => {
  const { url } = await startTestApp(t, { redis: false, env })
  const owner = await registerOwner(url)
  const device = { name: 'new', platform: 'x' }
  for (let i = 0; i < 4; i++) await login(url, `10.1.0.${i}`, { email: owner.user.email, password: 'wrong', device })
  const locked = await login(url, '10.1.1.1', { email: owner.user.email, password: owner.password, device })
  t.equal(locked.status, 429)
  await new Promise((r) => setTimeout(r, locked.retryAfter * 1000 + 100))
  t.equal((await login(url, '10.1.1.1', { email: owner.user.email, password: owner.password, device })).status, 200, 'no lock lasts longer than it says')
})

t.test('unknown emails are throttled exactly like known ones', async (t) => {
  const { url } = await startTestApp(t, { redis: false, env })
  const email = `nobody-${randomUUID()}@example.test`
  const statuses = []
  for (let i = 0; i < 4; i++) statuses.push((await login(url, `10.2.0.${i}`, { email, password: 'whatever pass', device: { name: 'x', platform: 'y' } })).status)
  t.same(statuses, [401, 401, 401, 429])
})
