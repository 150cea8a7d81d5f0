/**
 * Tokens, refresh tokens and passwords never reach the logs: a real server
 * process at LOG_LEVEL=trace goes through register, logins (right, wrong,
 * malformed, refused), refresh, logout, REST and WebSocket use of the tokens
 * (header, query string, in-band `auth`), and its whole output is searched.
 */
import t from 'tap'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomUUID } from 'node:crypto'
import WebSocket from 'ws'
import { createTestDatabaseUrl, testRedisPrefix, TEST_REDIS_URL } from '../helpers/db.js'
import { api } from '../helpers/app.js'

const ROOT = join(import.meta.dirname, '..', '..')

for (const format of ['json', 'pretty']) t.test(`a run at trace level, ${format} logs: no token, refresh token or password`, async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'tasksync-logs-'))
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      DATA_DIR: dataDir,
      PORT: '0',
      LOG_LEVEL: 'trace',
      LOG_FORMAT: format,
      DATABASE_URL: await createTestDatabaseUrl(t),
      REDIS_URL: TEST_REDIS_URL,
      REDIS_PREFIX: testRedisPrefix(),
      JWT_SECRET: 'a-shared-secret-of-enough-length-0123456789',
      SCRYPT_LOG_N: '10',
      LOGIN_ACCOUNT_MAX_FAILURES: '2',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let log = ''
  child.stdout.on('data', (d) => (log += d))
  child.stderr.on('data', (d) => (log += d))
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()))
  t.teardown(() => child.kill('SIGKILL'))
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout.on('data', () => {
      const m = log.match(/Server listening at (http:\/\/127\.0\.0\.1:\d+)/)
      if (m && /tasksync ready in/.test(log)) resolve(m[1])
    })
    child.on('exit', (c) => reject(new Error(`exited ${c}: ${log}`)))
  })

  const password = `pw-${randomUUID()}`
  const wrongPassword = `wrong-${randomUUID()}`
  const email = `log-${randomUUID().slice(0, 8)}@example.test`
  const secrets: string[] = [password, wrongPassword]
  const reg = await api(url).post('/api/auth/register', { orgName: 'Logs', email, password, displayName: 'L' })
  t.equal(reg.status, 201)
  const device = { id: reg.body.device.id, name: 'd', platform: 'p' }
  const login = await api(url).post('/api/auth/login', { email, password, device })
  t.equal(login.status, 200)
  for (let i = 0; i < 3; i++) await api(url).post('/api/auth/login', { email, password: wrongPassword, device: { name: 'x', platform: 'y' } })
  await api(url).request('POST', '/api/auth/login', `{"email":"${email}","password":"${password}"`, { 'content-type': 'application/json' })
  await api(url).post('/api/auth/register', { orgName: 'Logs', email, password, displayName: 'L' })
  await api(url).post('/api/users', { email: `u-${email}`, password, displayName: 'U', role: 'member' })
  const refreshed = await api(url).post('/api/auth/refresh', { refreshToken: login.body.refreshToken })
  t.equal(refreshed.status, 200)
  await api(url).post('/api/auth/refresh', { refreshToken: login.body.refreshToken })
  secrets.push(reg.body.accessToken, reg.body.refreshToken, login.body.accessToken, login.body.refreshToken, refreshed.body.accessToken, refreshed.body.refreshToken)
  const token = refreshed.body.accessToken as string
  t.equal((await api(url, token).get('/api/users/me')).status, 200)
  await api(url, token).get(`/api/tasks?access_token=${token}`)
  await api(url, `${token}x`).get('/api/users/me')
  const ws = new WebSocket(`${url.replace('http', 'ws')}/ws?access_token=${token}`)
  await new Promise((resolve) => ws.on('open', resolve))
  ws.send(JSON.stringify({ type: 'hello', clientId: randomUUID() }))
  ws.send(JSON.stringify({ type: 'auth', token: reg.body.accessToken }))
  ws.send(JSON.stringify({ type: 'auth', token: 'not a token at all' }))
  await new Promise((resolve) => ws.on('message', (m) => String(m).includes('"authed"') && resolve(null)))
  ws.close()
  await api(url).post('/api/auth/logout', { refreshToken: refreshed.body.refreshToken })

  child.kill('SIGTERM')
  await exited
  t.ok(log.length > 1000, `the run logged (${log.length} bytes at trace)`)
  t.match(log, /\/api\/tasks\?access_token=\*\*\*/, "a token in a URL is masked (in either log format)")
  for (const secret of secrets) {
    // A JWT's signature alone would do for a replay: look for each part.
    for (const part of secret.split('.').filter((p) => p.length >= 16)) t.notOk(log.includes(part), `no ${part.slice(0, 12)}… in the log`)
  }
})
