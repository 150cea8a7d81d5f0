/**
 * A device back after a long absence, against the real server: its offline queue
 * (never sent) goes as one mutation, the server transforms it past the ops
 * committed meanwhile (further behind than the replay window, within the transform
 * window), and the device takes the resume's snapshot instead of reading every
 * missed op from the log. And the limits: past the transform window the push is
 * refused and the device catches up from the log, as before.
 */
import t from 'tap'
import WebSocket from 'ws'
import { TaskSyncClient, memoryStorage, type WebSocketConstructor } from '../../src/client/index.js'
import { api, registerOwner, startTestApp } from '../helpers/app.js'
import type { Teardown } from '../helpers/teardown.js'

/** A client whose REST requests are recorded (method and path). */
function device(url: string, owner: { user: { email: string }; password: string }, t: Teardown) {
  const calls: string[] = []
  const client = new TaskSyncClient({
    url,
    credentials: { email: owner.user.email, password: owner.password, device: { name: 'laptop', platform: 'test' } },
    WebSocket: WebSocket as unknown as WebSocketConstructor,
    storage: memoryStorage(),
    backoff: { baseMs: 50, maxMs: 500 },
    // Any absence longer than this is caught up over REST (push, pull) before the socket resumes.
    longAbsenceMs: 50,
    fetch: (input, init) => {
      calls.push(`${init?.method ?? 'GET'} ${new URL(String(input)).pathname}`)
      return fetch(input, init)
    },
  })
  t.teardown(() => client.close())
  return { client, calls }
}

async function offlineDay(t: Teardown, env: Record<string, string>, dayOps: number) {
  const app = await startTestApp(t, { env })
  const owner = await registerOwner(app.url)
  const owners = api(app.url, owner.accessToken)
  const created = (await owners.post('/api/tasks', { title: 'plan' })).body
  const { client, calls } = device(app.url, owner, t)
  await client.connect()
  const task = await client.task(created.id)
  await client.whenSynced({ timeoutMs: 20_000 })
  client.goOffline()
  // Three edits while away: the first becomes the in-flight op, the next two wait behind it.
  task.submit({ title: [4, ' A'] })
  task.submit({ title: ['> '] })
  task.submit({ priority: { set: 2 } })
  // Meanwhile others commit a day of edits.
  for (let i = 0; i < dayOps; i++) {
    const r = await owners.patch(`/api/tasks/${created.id}`, { op: { description: [`${i % 10}`] }, baseRev: 1 + i })
    if (r.status !== 200) throw new Error(`patch ${i}: ${r.status}`)
  }
  await new Promise((r) => setTimeout(r, 100))
  calls.length = 0
  client.goOnline()
  await client.whenSynced({ timeoutMs: 20_000 })
  const server = (await owners.get(`/api/tasks/${created.id}`)).body
  const ops = (await owners.get(`/api/tasks/${created.id}/ops?from=2`)).body.ops as { clientId: string; seq: number; rev: number }[]
  return { client, task, calls, server, mine: ops.filter((o) => o.clientId === client.clientId) }
}

t.test('past the replay window, within the transform window: one push commits the folded queue; the snapshot, not the log', async (t) => {
  const { task, calls, server, mine } = await offlineDay(t, { REPLAY_WINDOW_OPS: '10', SYNC_TRANSFORM_WINDOW_OPS: '100' }, 25)
  t.equal(server.rev, 27, 'the creation, 25 ops of the day and one of the device')
  t.equal(server.title, '> plan A', 'all three offline edits committed')
  t.equal(server.priority, 2)
  t.equal(mine.length, 1, 'as one mutation')
  t.equal(calls.filter((c) => c === 'POST /api/sync/push').length, 1, 'pushed once')
  t.same(
    calls.filter((c) => c.endsWith('/ops')),
    [],
    'no op log page read: the resume snapshot (or the pull) holds the pushed op',
  )
  t.same([task.snapshot.title, task.snapshot.description, task.snapshot.priority, task.rev], [server.title, server.description, server.priority, server.rev], 'the device equals the server')
  t.equal(task.pending, 0)
})

t.test('past the transform window: the push is refused rev_too_old, the device reads the log and sends its edits again, once', async (t) => {
  const { task, calls, server, mine } = await offlineDay(t, { REPLAY_WINDOW_OPS: '10', SYNC_TRANSFORM_WINDOW_OPS: '10' }, 25)
  t.equal(server.title, '> plan A', 'all three offline edits committed')
  t.equal(server.priority, 2)
  t.equal(mine.length, 1, 'the folded queue committed once')
  t.ok(calls.some((c) => c.endsWith('/ops')), 'caught up from the op log')
  t.same([task.snapshot.title, task.snapshot.description, task.rev], [server.title, server.description, server.rev], 'the device equals the server')
  t.equal(task.pending, 0)
})
