import t from 'tap'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createTestDatabaseUrl, testRedisPrefix, TEST_REDIS_URL } from '../helpers/db.js'
import { api, registerOwner } from '../helpers/app.js'

const ROOT = join(import.meta.dirname, '..', '..')

interface Run {
  code: Promise<number | null>
  stdout: () => string
  stderr: () => string
  kill(signal: NodeJS.Signals): void
  /** Resolves with the listening URL once the server says it is ready. */
  ready: Promise<string>
}

/** Runs src/server.ts (through tsx) with exactly this environment. */
function server(env: Record<string, string>): Run {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  let err = ''
  let onReady: (url: string) => void
  const ready = new Promise<string>((resolve) => (onReady = resolve))
  child.stdout.on('data', (d) => {
    out += d
    const m = out.match(/Server listening at (http:\/\/127\.0\.0\.1:\d+)/)
    if (m && /tasksync ready in/.test(out)) onReady(m[1])
  })
  child.stderr.on('data', (d) => (err += d))
  const code = new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)))
  return { code, stdout: () => out, stderr: () => err, kill: (s) => child.kill(s), ready }
}

t.test('bad configuration: exit 1 with one clear line naming the variable, no stack', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'tasksync-cfg-'))
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ PORT: 'eighty' }, /^tasksync: configuration error: PORT must be an integer, got "eighty"\n$/],
    [{ PORT: '70000' }, /configuration error: invalid PORT/],
    [{ LOG_LEVEL: 'loud' }, /configuration error: invalid LOG_LEVEL/],
    [{ DATABASE_URL: 'mysql://x' }, /configuration error: invalid DATABASE_URL/],
    [{ NODE_ENV: 'production' }, /configuration error: DATABASE_URL is required when NODE_ENV=production/],
    [{ NODE_ENV: 'production', DATABASE_URL: 'postgres://127.0.0.1/x' }, /configuration error: JWT_SECRET or JWT_PRIVATE_KEY is required when NODE_ENV=production/],
    [{ JWT_SECRET: 'short' }, /configuration error: invalid JWT_SECRET/],
    [{ JWT_PRIVATE_KEY: 'not a pem' }, /configuration error: JWT_PRIVATE_KEY is not a PEM private key/],
  ]
  await Promise.all(
    cases.map(async ([env, expected]) => {
      const run = server({ DATA_DIR: dataDir, LOG_LEVEL: 'silent', ...env, ...(env.LOG_LEVEL ? { LOG_LEVEL: env.LOG_LEVEL } : {}) })
      t.equal(await run.code, 1, JSON.stringify(env))
      t.match(run.stderr(), expected, JSON.stringify(env))
      t.notMatch(run.stderr(), /\n\s+at /, 'no stack trace')
    }),
  )
})

t.test('an unreachable database is a clear start-up failure', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'tasksync-cfg-'))
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
  const run = server({ DATA_DIR: dataDir, LOG_LEVEL: 'silent', DATABASE_URL: 'postgres://postgres@127.0.0.1:1/none' })
  t.equal(await run.code, 1)
  t.match(run.stderr(), /^tasksync: cannot start: .*ECONNREFUSED/)
})

t.test('PostgreSQL and Redis: starts, says which backends, serves, exits on SIGTERM', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'tasksync-srv-'))
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
  const run = server({
    DATA_DIR: dataDir,
    PORT: '0',
    DATABASE_URL: await createTestDatabaseUrl(t),
    REDIS_URL: TEST_REDIS_URL,
    REDIS_PREFIX: testRedisPrefix(),
    JWT_SECRET: 'a-shared-secret-of-enough-length-0123456789',
    SCRYPT_LOG_N: '10',
    LOG_FORMAT: 'json',
  })
  t.teardown(() => run.kill('SIGKILL'))
  const url = await Promise.race([run.ready, run.code.then((c) => Promise.reject(new Error(`exited ${c}: ${run.stderr()}`)))])
  const ready = run.stdout().split('\n').find((l) => l.includes('tasksync ready in'))!
  t.match(JSON.parse(ready), { url, msg: new RegExp(`: open ${url} \\(API docs: ${url}/docs\\)$`) }, 'one JSON line with the app URL and /docs')
  t.match(run.stdout(), /"msg":"database: postgres at 127\.0\.0\.1:5432\/tasksync_test_/)
  t.match(run.stdout(), /"msg":"bus: redis at 127\.0\.0\.1:6379 \(prefix tasksync-test:/)
  t.notMatch(run.stdout(), /JWT_SECRET not set/)
  const owner = await registerOwner(url)
  const login = await api(url).post('/api/auth/login', { email: owner.user.email, password: owner.password, device: { name: 'x', platform: 'y' } })
  t.equal((await api(url, login.body.accessToken).get('/api/users/me')).status, 200)
  const started = Date.now()
  run.kill('SIGTERM')
  t.equal(await run.code, 0, 'a clean exit')
  t.ok(Date.now() - started < 10_000, 'within the shutdown timeout')
  t.match(run.stdout(), /SIGTERM received: draining/)
})

t.test('development: human-readable log lines, the ready line names the app and /docs', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'tasksync-srv-'))
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
  const run = server({
    DATA_DIR: dataDir,
    PORT: '0',
    DATABASE_URL: await createTestDatabaseUrl(t),
    JWT_SECRET: 'a-shared-secret-of-enough-length-0123456789',
    SCRYPT_LOG_N: '10',
  })
  t.teardown(() => run.kill('SIGKILL'))
  const url = await Promise.race([run.ready, run.code.then((c) => Promise.reject(new Error(`exited ${c}: ${run.stderr()}`)))])
  const ready = run.stdout().split('\n').find((l) => l.includes('tasksync ready in'))!
  t.notMatch(ready, /^\{/, 'not JSON')
  t.match(ready, `open ${url} (API docs: ${url}/docs)`)
  run.kill('SIGTERM')
  t.equal(await run.code, 0)
})
