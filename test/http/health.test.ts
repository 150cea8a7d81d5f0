import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startTestApp, api } from '../helpers/app.js'
import { createTestDatabaseUrl } from '../helpers/db.js'
import { buildApp } from '../../src/app.js'
import { loadConfig } from '../../src/config/index.js'

t.test('health, metrics, docs and unknown routes', async (t) => {
  const { url, app } = await startTestApp(t)
  const c = api(url)

  const live = await c.get('/health')
  t.equal(live.status, 200)
  t.same(live.body, { status: 'ok' })

  const detail = await c.get('/api/health')
  t.equal(detail.status, 200)
  t.match(detail.body, {
    status: 'ok',
    instanceId: app.instanceId,
    database: { kind: 'postgres', status: 'up' },
    bus: { kind: 'redis', status: 'up' },
    connections: 0,
    draining: false,
  })

  const metrics = await fetch(url + '/metrics')
  t.equal(metrics.status, 200)
  const text = await metrics.text()
  t.match(text, /process_cpu_user_seconds_total/)
  t.match(text, /tasksync_http_request_duration_seconds_bucket\{.*route="\/api\/health"/)

  const doc = await c.get('/docs/json')
  t.equal(doc.status, 200)
  t.equal(doc.body.openapi.slice(0, 2), '3.')
  t.ok(doc.body.paths['/api/health'], 'routes are documented')

  const ui = await fetch(url + '/docs/')
  t.equal(ui.status, 200)
  t.match(await ui.text(), /swagger-ui-bundle\.js/)
  const csp = ui.headers.get('content-security-policy') ?? ''
  t.match(csp, /script-src 'self'/, 'helmet CSP allows the UI scripts served from /docs')
  t.notMatch(csp, /upgrade-insecure-requests/, 'the UI works over plain http')
  const bundle = await fetch(url + '/docs/static/swagger-ui-bundle.js')
  t.equal(bundle.status, 200)
  await bundle.arrayBuffer() // an unread body keeps the connection busy and delays close

  const missing = await c.get('/nope')
  t.equal(missing.status, 404)
  t.equal(missing.body.error.code, 'not_found')
})

t.test('health on the in-process bus', async (t) => {
  const { url } = await startTestApp(t, { redis: false })
  const detail = await api(url).get('/api/health')
  t.match(detail.body, { status: 'ok', bus: { kind: 'memory', status: 'up' } })
})

t.test('draining: set as soon as close begins, before plugins close', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tasksync-drain-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const app = await buildApp(loadConfig({ DATA_DIR: dir, LOG_LEVEL: 'silent', DATABASE_URL: await createTestDatabaseUrl(t) }))
  let inPreClose: boolean | undefined
  let inOnClose: boolean | undefined
  app.addHook('preClose', async () => {
    inPreClose = app.draining
  })
  app.addHook('onClose', async () => {
    inOnClose = app.draining
  })
  await app.ready()
  t.equal(app.draining, false)
  t.equal((await app.inject('/health')).statusCode, 200)
  await app.close()
  t.equal(inPreClose, true, 'set by the first preClose hook, before any registered later')
  t.equal(inOnClose, true)
})
