/**
 * Cross-site WebSocket hijacking: a browser lets any page open a socket to any
 * server, sending the page's Origin. Only the allowed origins get an upgrade;
 * clients that send no Origin (apps, servers) are not concerned.
 */
import t from 'tap'
import WebSocket from 'ws'
import { loadConfig } from '../../src/config/index.js'
import { startTestApp, registerOwner } from '../helpers/app.js'

function upgrade(url: string, token: string, origin?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`${url.replace('http', 'ws')}/ws?access_token=${token}`, origin ? { origin } : {})
    ws.on('unexpected-response', (_req, res) => {
      let body = ''
      res.on('data', (d) => (body += d))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
    })
    ws.on('open', () => {
      resolve({ status: 101, body: '' })
      ws.close()
    })
    ws.on('error', () => {})
  })
}

t.test('WS_ALLOWED_ORIGINS: listed origins and clients without Origin get a socket; others 403', async (t) => {
  const { url } = await startTestApp(t, { redis: false, env: { WS_ALLOWED_ORIGINS: 'https://app.example.test, https://Admin.example.test/' } })
  const owner = await registerOwner(url)
  t.equal((await upgrade(url, owner.accessToken, 'https://app.example.test')).status, 101)
  t.equal((await upgrade(url, owner.accessToken, 'https://admin.example.test')).status, 101, 'compared as browsers send it: lower case, no slash')
  t.equal((await upgrade(url, owner.accessToken)).status, 101, 'no Origin: not a browser')
  const evil = await upgrade(url, owner.accessToken, 'https://evil.example.test')
  t.equal(evil.status, 403)
  t.equal(JSON.parse(evil.body).error.code, 'forbidden')
  t.equal((await upgrade(url, owner.accessToken, 'null')).status, 403, 'a sandboxed page')
  t.equal((await upgrade(url, owner.accessToken, 'https://app.example.test.evil.test')).status, 403, 'no prefix match')
})

t.test('the default: the CORS_ORIGIN list in production, any origin elsewhere', async (t) => {
  const base = { DATABASE_URL: 'postgres://127.0.0.1/x', JWT_SECRET: 'x'.repeat(40) }
  t.same(loadConfig({ ...base, NODE_ENV: 'production', CORS_ORIGIN: 'https://a.test,https://b.test' }).wsOrigins, ['https://a.test', 'https://b.test'])
  t.equal(loadConfig({ ...base, NODE_ENV: 'production' }).wsOrigins, '*', 'CORS_ORIGIN * allows any')
  t.equal(loadConfig({ ...base, NODE_ENV: 'development', CORS_ORIGIN: 'https://a.test' }).wsOrigins, '*')
  t.same(loadConfig({ ...base, NODE_ENV: 'production', CORS_ORIGIN: 'https://a.test', WS_ALLOWED_ORIGINS: 'https://c.test' }).wsOrigins, ['https://c.test'], 'an explicit list wins')
})
