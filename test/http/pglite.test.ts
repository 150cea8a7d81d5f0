import t from 'tap'
import { mkdtempSync, rmSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildApp } from '../../src/app.js'
import { loadConfig } from '../../src/config/index.js'
import { api, registerOwner } from '../helpers/app.js'

/** The embedded path: no DATABASE_URL, no REDIS_URL, no JWT_SECRET — what `npm start` does on a fresh clone. */
async function start(dataDir: string) {
  const app = await buildApp(loadConfig({ DATA_DIR: dataDir, LOG_LEVEL: 'silent', SCRYPT_LOG_N: '10' }))
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as { port: number }
  return { app, url: `http://127.0.0.1:${port}` }
}

t.test('PGlite under DATA_DIR: register → login → me, and everything survives a restart', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'tasksync-pglite-'))
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))

  const first = await start(dataDir)
  t.equal(first.app.database.kind, 'pglite')
  t.equal(first.app.bus.kind, 'memory')
  t.ok(existsSync(join(dataDir, 'jwt-secret')), 'a generated secret is kept in DATA_DIR')
  const owner = await registerOwner(first.url)
  const login = await api(first.url).post('/api/auth/login', { email: owner.user.email, password: owner.password, device: { name: 'cli', platform: 'linux' } })
  t.equal(login.status, 200)
  const me = await api(first.url, login.body.accessToken).get('/api/users/me')
  t.equal(me.status, 200)
  t.equal(me.body.email, owner.user.email)
  const project = await api(first.url, login.body.accessToken).post('/api/projects', { name: 'Embedded' })
  t.equal(project.status, 201)
  const health = await api(first.url).get('/api/health')
  t.match(health.body, { status: 'ok', database: { kind: 'pglite', status: 'up' }, bus: { kind: 'memory', status: 'up' } })
  await first.app.close()

  const second = await start(dataDir)
  t.teardown(() => second.app.close())
  const again = await api(second.url, login.body.accessToken).get('/api/users/me')
  t.equal(again.status, 200, 'the same secret: tokens issued before the restart still verify')
  const projects = await api(second.url, login.body.accessToken).get('/api/projects')
  t.same(projects.body.items.map((p: any) => p.name), ['Embedded'], 'data persisted')
  const refreshed = await api(second.url).post('/api/auth/refresh', { refreshToken: login.body.refreshToken })
  t.equal(refreshed.status, 200)
})
