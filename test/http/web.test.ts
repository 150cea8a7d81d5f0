/** The web app as the server serves it: long-cached hashed assets, index.html for app routes only, WEB_APP=false. */
import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { startTestApp } from '../helpers/app.js'
import { ensureWebBuilt } from '../e2e/browser.js'
import { webDir } from '../../src/http/web.js'

await ensureWebBuilt()
const build = JSON.parse(readFileSync(join(webDir(), 'build.json'), 'utf8')) as { shell: string[] }

t.test('assets are immutable and pre-compressed; pages revalidate; unknown paths stay JSON 404', async (t) => {
  const { url } = await startTestApp(t, { redis: false })
  const script = build.shell.find((f) => f.endsWith('.js'))!
  const asset = await fetch(url + script, { headers: { 'accept-encoding': 'br, gzip' } })
  t.equal(asset.status, 200)
  t.match(asset.headers.get('cache-control'), /max-age=31536000/)
  t.match(asset.headers.get('cache-control'), /immutable/)
  t.equal(asset.headers.get('content-encoding'), 'br', 'the pre-compressed file')
  for (const path of ['/', '/login', '/board', '/tasks/00000000-0000-4000-8000-000000000000', '/admin/users', '/dashboard']) {
    const res = await fetch(url + path)
    t.equal(res.status, 200, path)
    t.match(res.headers.get('content-type'), /text\/html/, path)
    t.equal(res.headers.get('cache-control'), 'no-cache', path)
    t.match(await res.text(), script, `${path} is the app's index.html`)
  }
  const sw = await fetch(url + '/sw.js')
  t.equal(sw.headers.get('cache-control'), 'no-cache')
  const missing = await fetch(url + '/nowhere')
  t.equal(missing.status, 404)
  t.same((await missing.json()).error.code, 'not_found')
  t.equal((await fetch(url + '/assets/nothing-here.js')).status, 404)
  const doc = await (await fetch(url + '/docs/json')).json()
  t.notOk(Object.keys(doc.paths).some((p) => !p.startsWith('/api') && !p.startsWith('/.well-known') && !['/health', '/metrics', '/ws'].includes(p)), 'the pages are not in the OpenAPI document')
})

t.test('WEB_APP=false: only the API', async (t) => {
  const { url } = await startTestApp(t, { redis: false, env: { WEB_APP: 'false' } })
  t.equal((await fetch(url + '/')).status, 404)
  t.equal((await fetch(url + '/board')).status, 404)
})
