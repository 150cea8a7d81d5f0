import t from 'tap'
import { startTestApp, api, registerOwner, addMember } from '../helpers/app.js'
import { TestSocket } from '../ws/helpers.js'

t.test('users: me, paginated list, creation by role', async (t) => {
  const { url } = await startTestApp(t)
  const owner = await registerOwner(url)
  const o = api(url, owner.accessToken)
  const admin = await addMember(url, owner.accessToken, 'admin')
  const member = await addMember(url, admin.accessToken, 'member')
  const viewer = await addMember(url, admin.accessToken, 'viewer')

  t.match((await api(url, member.accessToken).get('/api/users/me')).body, { id: member.user.id, role: 'member', orgId: owner.organization.id })

  const ids = new Set<string>()
  let cursor: string | null = null
  let pages = 0
  do {
    const res: any = await api(url, viewer.accessToken).get(`/api/users?limit=3${cursor ? `&cursor=${cursor}` : ''}`)
    t.equal(res.status, 200)
    t.ok(res.body.items.length <= 3)
    for (const u of res.body.items) ids.add(u.id)
    cursor = res.body.nextCursor
    pages++
  } while (cursor)
  t.equal(ids.size, 4, 'every user once, viewers may list')
  t.equal(pages, 2)
  const full = await o.get('/api/users')
  t.equal(full.body.items.length, 4)
  t.equal(full.body.nextCursor, null)
  t.ok(full.body.items.every((u: any) => !('passwordHash' in u)))

  const input = (role: string, email = `${role}-${Math.random().toString(36).slice(2)}@example.test`) => ({ email, password: 'long enough pass', displayName: 'New', role })
  const byMember = await api(url, member.accessToken).post('/api/users', input('member'))
  t.equal(byMember.status, 403)
  t.equal(byMember.body.error.code, 'forbidden')
  t.equal((await api(url, viewer.accessToken).post('/api/users', input('viewer'))).status, 403)
  t.equal((await api(url, admin.accessToken).post('/api/users', input('owner'))).status, 403, 'an admin cannot make an owner')
  const newOwner = await o.post('/api/users', input('owner'))
  t.equal(newOwner.status, 201, 'an owner can')
  t.match(newOwner.body, { role: 'owner', orgId: owner.organization.id })
  const dup = await o.post('/api/users', input('member', member.user.email.toUpperCase()))
  t.equal(dup.status, 409)
  t.equal(dup.body.error.code, 'already_exists')
  t.equal((await o.post('/api/users', { ...input('member'), role: 'superuser' })).status, 400)
  t.equal((await o.post('/api/users', { ...input('member'), password: 'short' })).status, 400)
  t.equal((await o.get('/api/users?cursor=garbage')).status, 400)
  t.equal((await o.get('/api/users?limit=1000')).status, 400)
})

t.test('users of another organization are invisible', async (t) => {
  const { url } = await startTestApp(t)
  const a = await registerOwner(url)
  const b = await registerOwner(url)
  await addMember(url, b.accessToken, 'member')
  const list = await api(url, a.accessToken).get('/api/users')
  t.same(list.body.items.map((u: any) => u.id), [a.user.id])
  // A cursor is only a position: one made from another organization's id still lists this org only.
  const cursor = Buffer.from(JSON.stringify({ id: '00000000-0000-4000-8000-000000000000' })).toString('base64url')
  const page = await api(url, a.accessToken).get(`/api/users?cursor=${cursor}`)
  t.same(page.body.items.map((u: any) => u.orgId), [a.organization.id])
})

/** A fresh app and organization with its owner and an admin, each with an API client. */
async function team(t: Parameters<typeof startTestApp>[0]) {
  const { url } = await startTestApp(t)
  const owner = await registerOwner(url)
  const admin = await addMember(url, owner.accessToken, 'admin')
  return { url, owner, o: api(url, owner.accessToken), admin, a: api(url, admin.accessToken) }
}

t.test('PATCH /api/users/:id: display names, roles, and the last owner', async (t) => {
  const { url, owner, o, admin, a } = await team(t)
  const member = await addMember(url, admin.accessToken, 'member')
  const m = api(url, member.accessToken)

  const renamed = await m.patch(`/api/users/${member.user.id}`, { displayName: '  Mia  ' })
  t.same([renamed.status, renamed.body.displayName, renamed.body.role], [200, 'Mia', 'member'], 'anyone renames themselves (trimmed)')
  t.equal((await m.patch(`/api/users/${admin.user.id}`, { displayName: 'x' })).status, 403, "not someone else's name")
  t.equal((await m.patch(`/api/users/${member.user.id}`, { role: 'admin' })).status, 403, 'nor their own role')
  t.equal((await m.patch(`/api/users/${member.user.id}`, {})).status, 400, 'an empty change is a bad request')
  t.equal((await m.patch(`/api/users/${member.user.id}`, { role: 'boss' })).status, 400)
  t.equal((await a.patch(`/api/users/${crypto.randomUUID()}`, { role: 'viewer' })).status, 404)
  t.equal((await api(url, (await registerOwner(url)).accessToken).patch(`/api/users/${member.user.id}`, { role: 'viewer' })).status, 404, 'another organization: not found')

  const demoted = await a.patch(`/api/users/${member.user.id}`, { role: 'viewer' })
  t.same([demoted.status, demoted.body.role], [200, 'viewer'], 'an admin changes a member to viewer')
  // The role travels in the access token: it applies from the next refresh.
  const refreshed = await api(url).post('/api/auth/refresh', { refreshToken: member.refreshToken })
  t.equal(refreshed.body.user.role, 'viewer')
  const asViewer = api(url, refreshed.body.accessToken)
  t.equal((await asViewer.post('/api/tasks', { title: 'no' })).status, 403, 'the refreshed token writes no more')

  t.equal((await a.patch(`/api/users/${member.user.id}`, { role: 'owner' })).status, 403, 'an admin makes no owner')
  t.equal((await a.patch(`/api/users/${owner.user.id}`, { role: 'member' })).status, 403, 'nor unmakes one')
  const lastOwner = await o.patch(`/api/users/${owner.user.id}`, { role: 'admin' })
  t.same([lastOwner.status, lastOwner.body.error.code], [403, 'forbidden'], 'the last owner cannot step down')
  t.match(lastOwner.body.error.message, /at least one owner/)
  t.equal((await o.patch(`/api/users/${admin.user.id}`, { role: 'owner' })).status, 200, 'an owner makes another owner')
  t.equal((await o.patch(`/api/users/${owner.user.id}`, { role: 'admin' })).status, 200, 'then may step down')

  // Two owners demoting each other at once: one of them must stay owner.
  const second = await addMember(url, admin.accessToken, 'member')
  await a.patch(`/api/users/${second.user.id}`, { role: 'owner' }) // admin is an owner now
  const newAdmin = await api(url).post('/api/auth/refresh', { refreshToken: admin.refreshToken })
  const secondFresh = await api(url).post('/api/auth/refresh', { refreshToken: second.refreshToken })
  const results = await Promise.all([
    api(url, newAdmin.body.accessToken).patch(`/api/users/${second.user.id}`, { role: 'member' }),
    api(url, secondFresh.body.accessToken).patch(`/api/users/${admin.user.id}`, { role: 'member' }),
  ])
  t.same(results.map((r) => r.status).sort(), [200, 403], 'exactly one demotion wins')
  const owners = (await o.get('/api/users?limit=100')).body.items.filter((u: { role: string }) => u.role === 'owner')
  t.equal(owners.length, 1, 'one owner is left')
})

t.test('DELETE /api/users/:id: no more logins, devices revoked, sockets closed, history kept', async (t) => {
  const { url, owner, o, admin, a } = await team(t)
  const leaving = await addMember(url, admin.accessToken, 'member')
  const task = await api(url, leaving.accessToken).post('/api/tasks', { title: 'written before leaving' })
  const socket = await TestSocket.ready(url, leaving.accessToken)

  t.equal((await api(url, leaving.accessToken).delete(`/api/users/${admin.user.id}`)).status, 403, 'a member removes nobody')
  t.equal((await a.delete(`/api/users/${owner.user.id}`)).status, 403, 'an admin removes no owner')
  t.equal((await o.delete(`/api/users/${owner.user.id}`)).status, 403, 'the last owner cannot be removed')

  t.equal((await a.delete(`/api/users/${leaving.user.id}`)).status, 204)
  t.equal((await socket.closed).code, 1008, "the user's socket is closed")
  const login = await api(url).post('/api/auth/login', { email: leaving.user.email, password: leaving.password, device: { name: 'again', platform: 'test' } })
  t.same([login.status, login.body.error.code], [401, 'unauthorized'], 'no login')
  t.match(login.body.error.message, /removed/)
  t.equal((await api(url).post('/api/auth/refresh', { refreshToken: leaving.refreshToken })).status, 401, 'no refresh')
  t.equal((await api(url, leaving.accessToken).get('/api/users/me')).status, 401, 'the access token is refused (device revoked)')
  t.notOk((await o.get('/api/users?limit=100')).body.items.some((u: { id: string }) => u.id === leaving.user.id), 'not listed')
  const kept = await o.get(`/api/tasks/${task.body.id}`)
  t.same([kept.status, kept.body.updatedBy], [200, leaving.user.id], 'their task still names them')
  t.equal((await a.delete(`/api/users/${leaving.user.id}`)).status, 404, 'removing again: not found')
  t.equal((await a.patch(`/api/users/${leaving.user.id}`, { displayName: 'x' })).status, 404)
  const again = await a.post('/api/users', { email: leaving.user.email, password: 'another long passphrase', displayName: 'Back', role: 'member' })
  t.equal(again.status, 409, 'the email stays taken by the removed account')
})
