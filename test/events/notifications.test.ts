/**
 * Notifications through the real app, a real SMTP server and two instances:
 * assignment, @mention (display name or email), a comment on your task, due soon
 * and overdue (once per due date across instances, task content untouched); the
 * REST list with its unread count, `notification` on the person's socket, mails per
 * preference, and the daily digest at 08:00 local time, once.
 */
import t from 'tap'
import { randomUUID } from 'node:crypto'
import postgres from 'postgres'
import { startTestApp, registerOwner, addMember, api } from '../helpers/app.js'
import { TestSocket, until } from '../ws/helpers.js'
import { startSmtp } from './smtp.js'

const smtp = await startSmtp(t)
const env = { SMTP_URL: smtp.url, MAIL_FROM: 'tasksync <noreply@example.test>', EVENT_POLL_MS: '20', DUE_SCAN_INTERVAL_S: '0' }
const a = await startTestApp(t, { env })
const b = await startTestApp(t, { databaseUrl: a.databaseUrl, redisPrefix: a.redisPrefix, env })
const owner = await registerOwner(a.url)
const member = await addMember(a.url, owner.accessToken, 'member')
const ownerA = api(a.url, owner.accessToken)
const memberB = api(b.url, member.accessToken)
const sql = postgres(a.databaseUrl, { max: 1, onnotice: () => {} })
t.teardown(() => sql.end())
const mailsTo = (email: string) => smtp.mails.filter((m) => m.to === email)

t.test('assigned, mentioned, commented: in the list, on the socket, by mail', async (t) => {
  const socket = await TestSocket.ready(b.url, member.accessToken)
  t.teardown(() => socket.close())
  const taskId = randomUUID()
  await ownerA.post('/api/tasks', { id: taskId, title: 'Ship it' })
  const assigned = socket.next('notification', (m) => m.notification.kind === 'assigned')
  t.equal((await ownerA.patch(`/api/tasks/${taskId}`, { assigneeId: member.user.id })).status, 200)
  const pushed = await assigned
  t.match(pushed.notification, { kind: 'assigned', taskId, title: /assigned you “Ship it”/ }, 'a notification message on the person’s socket (another instance)')
  await smtp.waitFor((ms) => ms.some((m) => m.to === member.user.email && /assigned you/.test(m.subject)), 'the assignment mail')
  t.match(mailsTo(member.user.email)[0].text, new RegExp(taskId), 'the mail links the task')

  const mention = socket.next('notification', (m) => m.notification.kind === 'mentioned')
  await ownerA.post(`/api/tasks/${taskId}/comments`, { body: `@${member.user.displayName} can you look?` })
  await mention
  t.pass('mentioned by display name (one notification, not also "commented")')
  const byEmail = socket.next('notification', (m) => m.notification.kind === 'mentioned')
  await ownerA.post(`/api/tasks/${taskId}/comments`, { body: `cc @${member.user.email.toUpperCase()}` })
  await byEmail
  t.pass('mentioned by email')

  // The owner created the task: the member's comment tells the owner.
  await memberB.post(`/api/tasks/${taskId}/comments`, { body: 'on it' })
  await until(async () => (await ownerA.get('/api/notifications')).body.items.some((n: any) => n.kind === 'commented'), 'the owner’s comment notification')

  const list = await memberB.get('/api/notifications')
  t.same(list.body.items.map((n: any) => n.kind), ['mentioned', 'mentioned', 'assigned'], 'newest first, none for the member’s own comment')
  t.equal(list.body.unread, 3)
  t.same((await memberB.get('/api/notifications/unread-count')).body, { unread: 3 })
  const read = await memberB.post('/api/notifications/read', { ids: [list.body.items[2].id] })
  t.same(read.body, { marked: 1, unread: 2 })
  t.same((await memberB.post('/api/notifications/read', {})).body, { marked: 2, unread: 0 }, 'all read')
  t.same((await ownerA.post('/api/notifications/read', { ids: [list.body.items[0].id] })).body.marked, 0, 'nobody marks another’s')
  await smtp.waitFor((ms) => ms.filter((m) => m.to === member.user.email).length === 3, 'three mails to the member')
})

t.test('preferences: off sends no mail, digest waits for 08:00 local time and goes out once', async (t) => {
  const viewer = await addMember(a.url, owner.accessToken, 'member')
  const v = api(a.url, viewer.accessToken)
  // A time zone where it is now before 08:00, then one where it is past it.
  const utcHour = new Date().getUTCHours()
  const zoneAt = (want: (h: number) => boolean) => {
    for (let off = -12; off <= 14; off++) if (want((utcHour + off + 24) % 24)) return off === 0 ? 'UTC' : `Etc/GMT${off > 0 ? '-' : '+'}${Math.abs(off)}`
    throw new Error('no zone')
  }
  const early = zoneAt((h) => h < 7)
  const late = zoneAt((h) => h >= 9)
  const set = await v.patch('/api/notifications/settings', { timeZone: early, mail: { assigned: 'digest', mentioned: 'off' } })
  t.same(set.body, { timeZone: early, mail: { assigned: 'digest', mentioned: 'off', commented: 'immediately', due_soon: 'immediately', overdue: 'immediately' } })
  t.equal((await v.patch('/api/notifications/settings', { timeZone: 'Mars/Olympus' })).status, 400, 'an unknown time zone')

  const taskId = randomUUID()
  await ownerA.post('/api/tasks', { id: taskId, title: 'Digest me', assigneeId: viewer.user.id })
  await ownerA.post(`/api/tasks/${taskId}/comments`, { body: `@${viewer.user.displayName}` })
  await until(async () => (await v.get('/api/notifications')).body.unread === 2, 'both notifications listed')
  t.equal((await Promise.all([a.app.events.runDigests(), b.app.events.runDigests()])).reduce((x, y) => x + y, 0), 0, 'before 08:00 local: no digest')
  await v.patch('/api/notifications/settings', { timeZone: late })
  const sent = await Promise.all([a.app.events.runDigests(), b.app.events.runDigests(), a.app.events.runDigests()])
  t.equal(sent.reduce((x, y) => x + y, 0), 1, 'past 08:00 local: one digest, whichever instance')
  await smtp.waitFor((ms) => ms.some((m) => m.to === viewer.user.email && /digest/.test(m.subject)), 'the digest')
  const mine = mailsTo(viewer.user.email)
  t.equal(mine.length, 1, 'the digest is the only mail: mentions are off, assignments wait for it')
  t.match(mine[0].text, /assigned you “Digest me”/)
  t.equal(await b.app.events.runDigests(), 0, 'not twice a day')
})

t.test('due soon and overdue: once per task and due date across instances, task content untouched', async (t) => {
  const taskId = randomUUID()
  const past = new Date(Date.now() - 3600_000).toISOString()
  const soon = new Date(Date.now() + 6 * 3600_000).toISOString()
  await ownerA.post('/api/tasks', { id: taskId, title: 'Late', assigneeId: member.user.id, dueAt: past })
  const done = randomUUID()
  await ownerA.post('/api/tasks', { id: done, title: 'Done already', assigneeId: member.user.id, dueAt: past, status: 'done' })
  const upcoming = randomUUID()
  await ownerA.post('/api/tasks', { id: upcoming, title: 'Upcoming', assigneeId: member.user.id, dueAt: soon })
  const before = (await ownerA.get(`/api/tasks/${taskId}`)).body
  const counts = await Promise.all([a.app.events.scanDueDates(), b.app.events.scanDueDates(), a.app.events.scanDueDates(), b.app.events.scanDueDates()])
  t.equal(counts.reduce((x, y) => x + y, 0), 2, 'one overdue and one due-soon event in all')
  const rows = await sql`select type, task_id from events where type in ('task.overdue', 'task.due_soon') and org_id = ${owner.organization.id} order by seq`
  t.same(rows.map((r) => `${r.type} ${r.task_id}`).sort(), [`task.overdue ${taskId}`, `task.due_soon ${upcoming}`].sort(), 'not for the done task')
  const after = (await ownerA.get(`/api/tasks/${taskId}`)).body
  t.same([after.rev, after.updatedAt], [before.rev, before.updatedAt], 'the task did not change')
  await until(async () => (await memberB.get('/api/notifications')).body.items.some((n: any) => n.kind === 'overdue' && n.taskId === taskId), 'the overdue notification')
  t.ok((await memberB.get('/api/notifications')).body.items.some((n: any) => n.kind === 'due_soon' && n.taskId === upcoming), 'the due-soon notification')

  await ownerA.patch(`/api/tasks/${taskId}`, { dueAt: new Date(Date.now() - 60_000).toISOString() })
  t.equal((await Promise.all([a.app.events.scanDueDates(), b.app.events.scanDueDates()])).reduce((x, y) => x + y, 0), 1, 'a new due date makes it overdue again, once')
})

t.test('housekeeping: notifications past NOTIFICATION_RETENTION_DAYS go once mailed; a due alert goes only when it can no longer fire', async (t) => {
  const taskId = randomUUID()
  const due = new Date(Date.now() - 3_600_000).toISOString()
  await ownerA.post('/api/tasks', { id: taskId, title: 'Old news', assigneeId: member.user.id, dueAt: due })
  await a.app.events.scanDueDates()
  await until(async () => (await memberB.get('/api/notifications')).body.items.some((n: any) => n.kind === 'overdue' && n.taskId === taskId), 'the overdue notification')
  const mine = async () => Number((await sql`select count(*)::int as n from notifications where task_id = ${taskId}`)[0].n)
  const alerts = async () => Number((await sql`select count(*)::int as n from due_alerts where task_id = ${taskId}`)[0].n)
  t.ok((await mine()) >= 2 && (await alerts()) === 1, 'assigned and overdue notifications, one alert')
  await until(async () => Number((await sql`select count(*)::int as n from notifications where task_id = ${taskId} and mail not in ('none', 'sent')`)[0].n) === 0, 'their mails settled')

  const now = await a.app.housekeeping.run()
  t.same(now.notificationsPurged, { notifications: 0, dueAlerts: 0 }, 'nothing is old enough yet')
  const later = await a.app.housekeeping.run({ now: new Date(Date.now() + 91 * 86_400_000) })
  t.ok(later.notificationsPurged!.notifications >= 2, `past the retention they go (${later.notificationsPurged!.notifications})`)
  t.equal(await mine(), 0)
  t.equal(await alerts(), 1, 'the alert of a task still open and overdue at the same date stays')
  t.equal(await a.app.events.scanDueDates(), 0, 'so the scan emits nothing again')

  await ownerA.patch(`/api/tasks/${taskId}`, { status: 'done' })
  const done = await a.app.housekeeping.run({ now: new Date(Date.now() + 92 * 86_400_000) })
  t.equal(done.notificationsPurged!.dueAlerts, 1, 'done: the alert can no longer fire, it goes')
  t.equal(await alerts(), 0)
})
