import t from 'tap'
import { api, registerOwner, startTestApp } from '../helpers/app.js'

/** Every live task of the org over REST, all pages. */
async function allTasks(url: string, token: string): Promise<any[]> {
  const out: any[] = []
  let cursor: string | null = null
  do {
    const res: any = await api(url, token).get(`/api/tasks?limit=200${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`)
    out.push(...res.body.items)
    cursor = res.body.nextCursor
  } while (cursor)
  return out
}

t.test('GET /api/stats: a demo workspace, counted against the task listing; another org sees only its own', async (t) => {
  const { url } = await startTestApp(t)
  const unique = Math.random().toString(36).slice(2, 10)
  const reg = await api(url).post('/api/auth/register', { orgName: 'Demo', email: `demo-${unique}@example.test`, password: 'a long password', displayName: 'Ada', demo: true })
  t.equal(reg.status, 201)
  const token = reg.body.accessToken
  const tasks = await allTasks(url, token)
  t.ok(tasks.length >= 20, `the demo workspace has tasks (${tasks.length})`)
  const users = (await api(url, token).get('/api/users')).body.items
  t.equal(users.length, 4, 'the owner and three teammates')
  t.ok((await api(url, token).get('/api/projects')).body.items.length >= 2, 'projects')

  const res = await api(url, token).get('/api/stats')
  t.equal(res.status, 200)
  const s = res.body
  t.equal(s.totals.tasks, tasks.length)
  for (const { status, count } of s.byStatus) t.equal(count, tasks.filter((x) => x.status === status).length, `status ${status}`)
  for (const { priority, count } of s.byPriority) t.equal(count, tasks.filter((x) => x.priority === priority).length, `priority ${priority}`)
  for (const { assigneeId, count } of s.byAssignee) t.equal(count, tasks.filter((x) => x.assigneeId === assigneeId).length, `assignee ${assigneeId}`)
  const now = Date.now()
  const overdue = tasks.filter((x) => x.dueAt && Date.parse(x.dueAt) < now && x.status !== 'done' && x.status !== 'cancelled')
  t.equal(s.totals.overdue, overdue.length, 'overdue count')
  t.ok(overdue.length > 0, 'the demo has overdue tasks')
  t.same(s.overdue.map((x: any) => x.id).sort(), overdue.sort((a, b) => Date.parse(a.dueAt) - Date.parse(b.dueAt) || (a.id < b.id ? -1 : 1)).slice(0, 20).map((x) => x.id).sort())
  t.equal(s.perDay.length, 30)
  t.equal(s.perDay.at(-1).date, new Date().toISOString().slice(0, 10), 'the series ends today (UTC)')
  const created = s.perDay.reduce((n: number, d: any) => n + d.created, 0)
  t.equal(created, tasks.filter((x) => Date.parse(x.createdAt) >= Date.parse(s.perDay[0].date)).length, 'created per day adds up to the tasks created in the window')

  // A live change moves the figures: a new overdue task, then done.
  const due = new Date(now - 86_400_000).toISOString()
  const made = await api(url, token).post('/api/tasks', { title: 'late', dueAt: due })
  t.equal(made.status, 201)
  let after = (await api(url, token).get('/api/stats')).body
  t.equal(after.totals.overdue, s.totals.overdue + 1)
  t.equal(after.perDay.at(-1).created, s.perDay.at(-1).created + 1)
  await api(url, token).patch(`/api/tasks/${made.body.id}`, { status: 'done' })
  after = (await api(url, token).get('/api/stats')).body
  t.equal(after.totals.overdue, s.totals.overdue)
  t.equal(after.perDay.at(-1).completed, s.perDay.at(-1).completed + 1)

  const other = await registerOwner(url)
  const empty = (await api(url, other.accessToken).get('/api/stats')).body
  t.equal(empty.totals.tasks, 0, 'another organization sees none of it')
  t.same(empty.byAssignee, [])
  t.equal((await api(url).get('/api/stats')).status, 401)
})

t.test('GET /api/stats is in the OpenAPI document with its response and errors', async (t) => {
  const { url } = await startTestApp(t, { redis: false })
  const doc = (await api(url).get('/docs/json')).body
  const op = doc.paths['/api/stats'].get
  t.ok(op.responses['200'].content['application/json'].schema.properties.perDay)
  t.ok(op.responses['401'])
})
