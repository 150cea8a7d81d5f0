/**
 * A route added without schemas cannot slip past the generated suites: the app
 * refuses to register it (src/http/base.ts), and every operation of /docs/json
 * documents a success schema, its path parameters, and the statuses its shape
 * implies (400, 401 with security, 413 with a body, 500).
 */
import t from 'tap'
import Fastify from 'fastify'
import fp from 'fastify-plugin'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Type } from 'typebox'
import { tasksync } from '../../src/app.js'
import { loadConfig } from '../../src/config/index.js'
import { validatorCompiler } from '../../src/http/validation.js'
import { createTestDatabaseUrl } from '../helpers/db.js'
import { startTestApp, TEST_JWT_SECRET } from '../helpers/app.js'
import { loadOperations, pathParams } from '../helpers/openapi.js'

t.test('a route without schemas, without a success response or with undeclared parameters is refused', async (t) => {
  const databaseUrl = await createTestDatabaseUrl(t)
  const dataDir = mkdtempSync(join(tmpdir(), 'tasksync-routes-'))
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
  const config = loadConfig({ NODE_ENV: 'test', DATABASE_URL: databaseUrl, JWT_SECRET: TEST_JWT_SECRET, DATA_DIR: dataDir, LOG_LEVEL: 'silent', SCRYPT_LOG_N: '10' })
  const app = Fastify({ logger: false })
  app.setValidatorCompiler(validatorCompiler)
  await app.register(fp(tasksync), { config })
  t.teardown(() => app.close())
  t.throws(() => app.get('/api/attachments', async () => ({})), /route GET \/api\/attachments has no schema/)
  t.throws(
    () => app.post('/api/webhooks', { schema: { body: Type.Object({ url: Type.String() }) } }, async () => ({})),
    /route POST \/api\/webhooks documents no success response/,
  )
  t.throws(
    () => app.get('/api/stats/:projectId', { schema: { response: { 200: Type.Object({ n: Type.Integer() }) } } }, async () => ({ n: 1 })),
    /does not declare its path parameters projectId/,
  )
  app.get('/internal/thing', { schema: { hide: true } }, async () => ({}))
  app.get('/api/stats/:projectId/ok', { schema: { params: Type.Object({ projectId: Type.String({ format: 'uuid' }) }), response: { 200: Type.Object({ n: Type.Integer() }) } } }, async () => ({ n: 1 }))
  await app.ready()
  const doc = app.swagger() as unknown as { paths: Record<string, Record<string, { responses: Record<string, unknown> }>> }
  t.notOk(doc.paths['/internal/thing'], 'a hidden route stays out of the document')
  t.same(Object.keys(doc.paths['/api/stats/{projectId}/ok'].get.responses).sort(), ['200', '400', '500'], 'a described one is in it, with the statuses its shape implies')
})

t.test('every operation of /docs/json is fully described', async (t) => {
  const { url } = await startTestApp(t, { redis: false })
  const ops = await loadOperations(url)
  t.ok(ops.length >= 36)
  for (const op of ops) {
    const statuses = Object.keys(op.responses)
    const success = statuses.filter((s) => /^2\d\d$/.test(s))
    t.ok(success.length > 0, `${op.key}: a success status`)
    for (const s of success) t.ok(s === '204' || op.responses[s], `${op.key}: ${s} has a schema`)
    // Health reports answer 503 with the same report as 200: the one exception to the error shape.
    const report = JSON.stringify(op.responses['200'])
    for (const s of statuses.filter((x) => Number(x) >= 400 && JSON.stringify(op.responses[x]) !== report)) t.match(op.responses[s], { properties: { error: { required: ['code', 'message'] } } }, `${op.key}: ${s} is the error shape`)
    t.ok(statuses.includes('500'), `${op.key}: 500`)
    if (op.secured) t.ok(statuses.includes('401') && statuses.includes('503'), `${op.key}: 401 and 503 (the token check)`)
    if (op.body || op.method !== 'GET') t.ok(statuses.includes('400') && statuses.includes('413'), `${op.key}: 400 and 413 (a body)`)
    for (const p of pathParams(op.path)) t.ok(op.parameters.some((x) => x.in === 'path' && x.name === p), `${op.key}: path parameter ${p} declared`)
  }
})
