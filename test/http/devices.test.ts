import t from 'tap'
import { randomUUID } from 'node:crypto'
import { startTestApp, api, registerOwner, addMember } from '../helpers/app.js'

t.test('devices: list, add, revoke kills refresh and access tokens at once', async (t) => {
  const { url } = await startTestApp(t)
  const owner = await registerOwner(url)
  const member = await addMember(url, owner.accessToken, 'member')
  const m = api(url, member.accessToken)

  const listed = await m.get('/api/devices')
  t.equal(listed.status, 200)
  t.same(listed.body.items.map((d: any) => d.id), [member.device.id], 'my devices only')
  t.equal(listed.body.nextCursor, null)

  const id = randomUUID()
  const added = await m.post('/api/devices', { id, name: 'watch', platform: 'wearos' })
  t.equal(added.status, 201)
  t.match(added.body, { id, userId: member.user.id, name: 'watch', platform: 'wearos', revokedAt: null })
  t.equal((await m.post('/api/devices', { id, name: 'again', platform: 'x' })).status, 409, 'an id is used once')
  const generated = await m.post('/api/devices', { name: 'no id', platform: 'x' })
  t.equal(generated.status, 201)
  t.match(generated.body.id, /^[0-9a-f-]{36}$/)
  t.equal((await m.post('/api/devices', { name: '', platform: 'x' })).status, 400)

  const page = await m.get('/api/devices?limit=2')
  t.equal(page.body.items.length, 2)
  const rest = await m.get(`/api/devices?limit=2&cursor=${page.body.nextCursor}`)
  t.equal(rest.body.items.length, 1)
  t.equal(rest.body.nextCursor, null)

  // Revoking the device this very session runs on.
  const gone = await m.delete(`/api/devices/${member.device.id}`)
  t.equal(gone.status, 204)
  const me = await m.get('/api/users/me')
  t.equal(me.status, 401, 'its access token fails at once')
  t.equal(me.body.error.message, 'this device has been revoked')
  t.equal((await api(url).post('/api/auth/refresh', { refreshToken: member.refreshToken })).status, 401, 'its refresh token too')

  const after = await api(url).post('/api/auth/login', { email: member.user.email, password: member.password, device: { name: 'new', platform: 'web' } })
  const list2 = await api(url, after.body.accessToken).get('/api/devices')
  t.match(list2.body.items.find((d: any) => d.id === member.device.id), { revokedAt: String }, 'a revoked device stays listed, marked')
  t.equal((await api(url, after.body.accessToken).delete(`/api/devices/${member.device.id}`)).status, 204, 'revoking twice is fine')
})

t.test('devices: who may see and revoke whose', async (t) => {
  const { url } = await startTestApp(t)
  const owner = await registerOwner(url)
  const admin = await addMember(url, owner.accessToken, 'admin')
  const member = await addMember(url, owner.accessToken, 'member')
  const other = await addMember(url, owner.accessToken, 'member')
  const stranger = await registerOwner(url)

  t.equal((await api(url, member.accessToken).get(`/api/devices?userId=${other.user.id}`)).status, 403)
  const byAdmin = await api(url, admin.accessToken).get(`/api/devices?userId=${other.user.id}`)
  t.same(byAdmin.body.items.map((d: any) => d.id), [other.device.id], "an admin lists anyone's")

  const notMine = await api(url, member.accessToken).delete(`/api/devices/${other.device.id}`)
  t.equal(notMine.status, 404, "a member cannot touch another member's device, nor learn of it")
  t.equal((await api(url, other.accessToken).get('/api/users/me')).status, 200, 'still alive')

  const crossOrg = await api(url, stranger.accessToken).delete(`/api/devices/${member.device.id}`)
  t.equal(crossOrg.status, 404, "another organization's device is a missing one")
  t.equal(crossOrg.body.error.code, 'not_found')
  t.equal((await api(url, member.accessToken).get('/api/users/me')).status, 200)

  t.equal((await api(url, member.accessToken).delete(`/api/devices/${randomUUID()}`)).status, 404)
  t.equal((await api(url, member.accessToken).delete('/api/devices/not-a-uuid')).status, 400)

  t.equal((await api(url, admin.accessToken).delete(`/api/devices/${other.device.id}`)).status, 204, "an admin revokes anyone's")
  t.equal((await api(url, other.accessToken).get('/api/users/me')).status, 401)
})
