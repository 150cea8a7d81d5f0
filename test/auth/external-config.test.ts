/** The AUTH_* variables are validated once at start-up, each refusal naming the variable. */
import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadConfig } from '../../src/config/index.js'

const dataDir = mkdtempSync(join(tmpdir(), 'tasksync-config-'))
t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
const base = { NODE_ENV: 'test', DATA_DIR: dataDir, JWT_SECRET: 'x'.repeat(40) }
const idp = { AUTH_JWKS_URL: 'https://idp.example/.well-known/jwks.json', AUTH_ISSUER: 'https://idp.example/', AUTH_AUDIENCE: 'api, other-api' }

t.test('a complete setting is parsed: audiences, role map, defaults', async (t) => {
  const c = loadConfig({ ...base, ...idp, AUTH_ROLE_MAP: 'Editor=member, Reader = viewer' })
  t.equal(c.builtinAuth, true)
  t.same(c.externalAuth?.audience, ['api', 'other-api'])
  t.equal(c.externalAuth?.roleMap.editor, 'member')
  t.equal(c.externalAuth?.roleMap.reader, 'viewer')
  t.equal(c.externalAuth?.roleMap.owner, 'owner')
  t.equal(c.externalAuth?.defaultRole, 'member')
  t.same(c.externalAuth?.claims, { org: 'org_id', role: 'role', name: 'name', email: 'email' })
  t.equal(loadConfig({ ...base, ...idp, AUTH_DEFAULT_ROLE: 'none' }).externalAuth?.defaultRole, null)
  t.equal(loadConfig(base).externalAuth, null, 'off by default')
})

t.test('incomplete or contradictory settings stop the server with the variable named', async (t) => {
  const refused: Array<[Record<string, string>, RegExp]> = [
    [{ AUTH_BUILTIN: 'false' }, /AUTH_BUILTIN=false needs AUTH_JWKS_URL/],
    [{ AUTH_JWKS_URL: idp.AUTH_JWKS_URL, AUTH_AUDIENCE: 'api' }, /AUTH_ISSUER is required/],
    [{ AUTH_JWKS_URL: idp.AUTH_JWKS_URL, AUTH_ISSUER: 'x' }, /AUTH_AUDIENCE is required/],
    [{ AUTH_ISSUER: 'x' }, /need AUTH_JWKS_URL/],
    [{ ...idp, AUTH_ISSUER: 'tasksync' }, /must not be "tasksync"/],
    [{ ...idp, AUTH_ROLE_MAP: 'editor=superuser' }, /AUTH_ROLE_MAP/],
    [{ ...idp, AUTH_ROLE_MAP: '=member' }, /AUTH_ROLE_MAP/],
    [{ ...idp, AUTH_DEFAULT_ROLE: 'root' }, /AUTH_DEFAULT_ROLE/],
    [{ ...idp, AUTH_JWKS_URL: 'ftp://idp.example/jwks' }, /AUTH_JWKS_URL/],
    [{ ...idp, AUTH_JWKS_URL: 'http://idp.example/jwks', NODE_ENV: 'production', DATABASE_URL: 'postgres://x/y' }, /must be https/],
  ]
  for (const [env, message] of refused) t.throws(() => loadConfig({ ...base, ...env }), { name: 'ConfigError', message }, JSON.stringify(env))
})

t.test('without built-in accounts, production needs no JWT secret', async (t) => {
  const c = loadConfig({ NODE_ENV: 'production', DATA_DIR: dataDir, DATABASE_URL: 'postgres://x/y', AUTH_BUILTIN: 'false', ...idp })
  t.equal(c.builtinAuth, false)
  t.equal(c.generatedSecret, false)
})
