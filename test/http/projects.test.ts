import t from 'tap'
import { randomUUID } from 'node:crypto'
import { startTestApp, api, registerOwner, addMember } from '../helpers/app.js'

t.test('projects: create, list, rename, archive', async (t) => {
  const { url } = await startTestApp(t)
  const owner = await registerOwner(url)
  const member = await addMember(url, owner.accessToken, 'member')
  const viewer = await addMember(url, owner.accessToken, 'viewer')
  const m = api(url, member.accessToken)

  const id = randomUUID()
  const created = await m.post('/api/projects', { id, name: '  Launch  ' })
  t.equal(created.status, 201)
  t.match(created.body, { id, name: 'Launch', createdBy: member.user.id, archivedAt: null, createdAt: String, updatedAt: String })
  t.equal((await m.post('/api/projects', { id, name: 'Again' })).status, 409, 'an id is used once per organization')
  const second = await m.post('/api/projects', { name: 'Second' })
  t.equal(second.status, 201)
  await m.post('/api/projects', { name: 'Third' })

  const page1 = await api(url, viewer.accessToken).get('/api/projects?limit=2')
  t.equal(page1.status, 200, 'viewers read')
  t.equal(page1.body.items.length, 2)
  const page2 = await api(url, viewer.accessToken).get(`/api/projects?limit=2&cursor=${page1.body.nextCursor}`)
  t.equal(page2.body.items.length, 1)
  t.equal(page2.body.nextCursor, null)

  const renamed = await m.patch(`/api/projects/${id}`, { name: 'Launch v2' })
  t.equal(renamed.status, 200)
  t.equal(renamed.body.name, 'Launch v2')
  t.ok(renamed.body.updatedAt >= created.body.updatedAt)

  const archived = await m.post(`/api/projects/${id}/archive`)
  t.equal(archived.status, 200)
  t.type(archived.body.archivedAt, 'string')
  const again = await m.post(`/api/projects/${id}/archive`)
  t.equal(again.body.archivedAt, archived.body.archivedAt, 'archiving twice keeps the first time')
  const active = await m.get('/api/projects')
  t.notOk(active.body.items.some((p: any) => p.id === id), 'archived projects leave the default list')
  const all = await m.get('/api/projects?includeArchived=true')
  t.ok(all.body.items.some((p: any) => p.id === id))

  const v = api(url, viewer.accessToken)
  t.equal((await v.post('/api/projects', { name: 'Nope' })).status, 403)
  t.equal((await v.patch(`/api/projects/${id}`, { name: 'Nope' })).status, 403)
  t.equal((await v.post(`/api/projects/${id}/archive`)).status, 403)
})

t.test('projects: invalid input is 400, unknown ids 404', async (t) => {
  const { url } = await startTestApp(t)
  const owner = await registerOwner(url)
  const o = api(url, owner.accessToken)
  for (const body of [{}, { name: '' }, { name: '   ' }, { name: 'x'.repeat(201) }, { name: 'ok', extra: 1 }, { name: 5 }, { id: 'nope', name: 'x' }]) {
    const res = await o.post('/api/projects', body)
    t.equal(res.status, 400, JSON.stringify(body))
    t.equal(res.body.error.code, 'bad_request')
    t.ok(Array.isArray(res.body.error.details), 'details say what is wrong')
  }
  t.equal((await o.patch('/api/projects/not-a-uuid', { name: 'x' })).status, 400)
  t.equal((await o.patch(`/api/projects/${randomUUID()}`, { name: 'x' })).status, 404)
  t.equal((await o.post(`/api/projects/${randomUUID()}/archive`)).status, 404)
  t.equal((await o.get('/api/projects?includeArchived=maybe')).status, 400)
  t.equal((await o.get('/api/projects')).body.items.length, 0, 'nothing was created')
})

t.test("another organization's projects: invisible, untouchable, ids not shared", async (t) => {
  const { url } = await startTestApp(t)
  const a = await registerOwner(url)
  const b = await registerOwner(url)
  const id = randomUUID()
  await api(url, a.accessToken).post('/api/projects', { id, name: 'Secret' })
  const bb = api(url, b.accessToken)
  t.same((await bb.get('/api/projects?includeArchived=true')).body.items, [])
  const rename = await bb.patch(`/api/projects/${id}`, { name: 'Hijack' })
  t.equal(rename.status, 404)
  t.same(rename.body, { error: { code: 'not_found', message: 'no such project' } }, 'exactly like a missing one')
  t.equal((await bb.post(`/api/projects/${id}/archive`)).status, 404)
  const same = await bb.post('/api/projects', { id, name: 'Mine' })
  t.equal(same.status, 201, 'the same id in another organization neither conflicts nor reveals')
  const mine = await api(url, a.accessToken).get('/api/projects')
  t.same(mine.body.items.map((p: any) => p.name), ['Secret'], 'and changes nothing here')
})

t.test('every route but health, docs, metrics and auth needs a token', async (t) => {
  const { url } = await startTestApp(t, { redis: false })
  for (const [method, path] of [
    ['GET', '/api/users/me'],
    ['GET', '/api/users'],
    ['POST', '/api/users'],
    ['GET', '/api/devices'],
    ['POST', '/api/devices'],
    ['DELETE', `/api/devices/${randomUUID()}`],
    ['GET', '/api/projects'],
    ['POST', '/api/projects'],
    ['PATCH', `/api/projects/${randomUUID()}`],
    ['POST', `/api/projects/${randomUUID()}/archive`],
  ]) {
    const res = await api(url).request(method, path, method === 'GET' || method === 'DELETE' ? undefined : {})
    t.equal(res.status, 401, `${method} ${path}`)
    t.equal(res.body.error.code, 'unauthorized')
  }
})
