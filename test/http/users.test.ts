import t from 'tap'
import { startTestApp, api, registerOwner, addMember } from '../helpers/app.js'

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
