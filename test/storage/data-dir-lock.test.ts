/**
 * One process per embedded data folder (issue #10): a second server or seed on a
 * DATA_DIR in use refuses to start with one line naming the folder and the process
 * holding it, exit code 1; a lock left by a process killed with SIGKILL does not
 * block the next start, and a clean exit removes it. Real processes throughout.
 */
import t from 'tap'
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { api, registerOwner } from '../helpers/app.js'

const ROOT = join(import.meta.dirname, '..', '..')

interface Run {
  pid: number
  code: Promise<number | null>
  output: () => string
  kill(signal: NodeJS.Signals): void
  /** The listening URL once the server says it is ready (rejects if it exits first). */
  ready: Promise<string>
}

function run(args: string[], dataDir: string): Run {
  const child = spawn(process.execPath, ['--import', 'tsx', ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', DATA_DIR: dataDir, PORT: '0', SCRYPT_LOG_N: '10', LOG_FORMAT: 'json', JWT_SECRET: 'a-shared-secret-of-enough-length-0123456789' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  const code = new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)))
  let onReady: (url: string) => void
  const ready = new Promise<string>((resolve, reject) => {
    onReady = resolve
    code.then((c) => reject(new Error(`exited ${c}: ${out}`)))
  })
  ready.catch(() => {})
  const take = (d: Buffer) => {
    out += d
    const m = out.match(/"url":"(http:\/\/127\.0\.0\.1:\d+)"/)
    if (m) onReady(m[1])
  }
  child.stdout.on('data', take)
  child.stderr.on('data', take)
  return { pid: child.pid!, code, output: () => out, kill: (s) => child.kill(s), ready }
}

const server = (dataDir: string) => run(['src/server.ts'], dataDir)
const seed = (dataDir: string) => run(['src/cli/seed.ts', '--tasks', '1', '--users', '1', '--projects', '1'], dataDir)

t.test('a second server and the seed refuse a DATA_DIR in use; a SIGKILLed holder does not block the next start', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'tasksync-lock-'))
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
  const first = server(dataDir)
  t.teardown(() => first.kill('SIGKILL'))
  const url = await first.ready
  const owner = await registerOwner(url)
  t.equal((await api(url, owner.accessToken).post('/api/tasks', { title: 'kept' })).status, 201)

  for (const [name, second] of [['server', server(dataDir)], ['seed', seed(dataDir)]] as const) {
    t.equal(await second.code, 1, `the second ${name} exits 1`)
    const lines = second.output().trim().split('\n')
    t.equal(lines.length, 1, `one line from the ${name}: ${second.output()}`)
    t.match(lines[0], `DATA_DIR ${dataDir} is in use by process ${first.pid}`, 'naming the folder and the holder')
  }
  t.equal((await api(url, owner.accessToken).get('/api/tasks')).body.items.length, 1, 'the first server carries on')

  first.kill('SIGKILL')
  await first.code
  t.ok(existsSync(join(dataDir, 'tasksync.lock')), 'a SIGKILL leaves the lock file behind')
  const next = server(dataDir)
  t.teardown(() => next.kill('SIGKILL'))
  const url2 = await next.ready
  const login = await api(url2).post('/api/auth/login', { email: owner.user.email, password: owner.password, device: { name: 'x', platform: 'y' } })
  t.equal((await api(url2, login.body.accessToken).get('/api/tasks')).body.items[0]?.title, 'kept', 'the stale lock was taken over; the data is there')
  t.equal(JSON.parse(readFileSync(join(dataDir, 'tasksync.lock'), 'utf8')).pid, next.pid, 'the lock names the new holder')
  next.kill('SIGTERM')
  t.equal(await next.code, 0)
  t.notOk(existsSync(join(dataDir, 'tasksync.lock')), 'a clean exit removes the lock')
})

t.test('a lock naming a pid that now belongs to another process is stale', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'tasksync-lock-'))
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
  // The pid of this very process (alive), with a start time that is not its own: a reused pid.
  const { hostname } = await import('node:os')
  writeFileSync(join(dataDir, 'tasksync.lock'), JSON.stringify({ pid: process.pid, host: hostname(), bootId: null, startTicks: '1', command: 'old', since: '2026-01-01T00:00:00.000Z' }))
  const s = seed(dataDir)
  t.equal(await s.code, 0, `the seed runs: ${s.output().slice(0, 300)}`)
  t.notOk(existsSync(join(dataDir, 'tasksync.lock')), 'and leaves no lock behind')
})
