/**
 * A `subscribe` with `since` is a socket resume: one sync log entry per message
 * (device, counts, duration), readable by admins at GET /api/sync/log. A
 * subscribe without `since` is not logged, and a log line that cannot be
 * written does not fail the resume.
 */
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { sql } from 'drizzle-orm'
import { startTestApp, registerOwner, addMember, api } from '../helpers/app.js'
import { TestSocket, sleep, until } from './helpers.js'

t.test('socket resumes in the sync log', async (t) => {
  const { app, url } = await startTestApp(t, { env: { REPLAY_WINDOW_OPS: '10' } })
  const owner = await registerOwner(url)
  const member = await addMember(url, owner.accessToken, 'member')
  const admin = api(url, owner.accessToken)
  const resumes = async () => (await admin.get('/api/sync/log?kind=resume')).body.items as any[]

  const writer = await TestSocket.ready(url, owner.accessToken)
  t.teardown(() => writer.close())
  let seq = 0
  /** A task at rev 1 + ops. */
  const task = async (ops: number) => {
    const taskId = randomUUID()
    await writer.request({ type: 'create', taskId, seq: ++seq, task: { title: '' } }, 'ack')
    for (let rev = 1; rev <= ops; rev++) {
      const s = ++seq
      await writer.request({ type: 'op', taskId, baseRev: rev, seq: s, op: { title: [`${s},`] } }, 'ack', (m) => m.seq === s)
    }
    return taskId
  }
  const replayed = await task(3) // rev 4: since 1 replays 3 ops
  const tooFar = await task(14) // rev 15: past the window of 10, a snapshot
  const ahead = await task(0) // rev 1: since 5 is sync_required
  const fresh = await task(0) // by id without since: a snapshot
  const missing = randomUUID()

  const device = await TestSocket.ready(url, member.accessToken)
  t.teardown(() => device.close())
  t.test('no entry for a subscribe without since', async (t) => {
    await device.request({ type: 'subscribe', taskIds: [fresh] }, 'subscribed')
    await device.request({ type: 'unsubscribe', taskIds: [fresh] }, 'unsubscribed')
    await sleep(200)
    t.same(await resumes(), [])
  })

  t.test('one entry per resuming subscribe, with its counts', async (t) => {
    const since = { [replayed]: 1, [tooFar]: 1, [ahead]: 5, [missing]: 0 }
    const sub = await device.request({ type: 'subscribe', taskIds: [fresh], since }, 'subscribed')
    t.same(sub.taskIds, [fresh, replayed, tooFar])
    await until(async () => (await resumes()).length > 0, 'the resume in the sync log')
    const [entry, ...more] = await resumes()
    t.same(more, [])
    t.match(entry, {
      kind: 'resume',
      userId: member.user.id,
      deviceId: member.device.id,
      clientId: device.clientId,
      counts: { tasks: 5, ops: 3, snapshots: 2, syncRequired: 1 },
    })
    t.ok(Number.isInteger(entry.durationMs) && entry.durationMs >= 0)
    const forbidden = await api(url, member.accessToken).get('/api/sync/log?kind=resume')
    t.equal(forbidden.status, 403, 'members do not read the log')
  })

  t.test('a log line that cannot be written does not fail the resume', async (t) => {
    await app.database.rows(sql`alter table sync_log rename to sync_log_away`)
    try {
      const other = await TestSocket.ready(url, owner.accessToken)
      const sub = await other.request({ type: 'subscribe', since: { [replayed]: 2 } }, 'subscribed')
      t.same(sub.taskIds, [replayed])
      t.same(other.all('op').map((m) => m.rev), [3, 4])
      await sleep(200)
      t.equal(app.gateway.socketCount, 3, 'the socket is still open')
      other.close()
    } finally {
      await app.database.rows(sql`alter table sync_log_away rename to sync_log`)
    }
    t.equal((await resumes()).length, 1, 'only the earlier entry')
  })
})
