/**
 * The SDK's time travel and search against the real server: task.at(rev),
 * client.diff(taskId, a, b), client.searchTasks(q).
 */
import t from 'tap'
import WebSocket from 'ws'
import { TaskSyncClient, type WebSocketConstructor } from '../../src/client/index.js'
import { startTestApp, registerOwner } from '../helpers/app.js'

t.test('task.at, client.diff and client.searchTasks', async (t) => {
  const app = await startTestApp(t, { redis: false })
  const owner = await registerOwner(app.url)
  const client = new TaskSyncClient({
    url: app.url,
    credentials: { email: owner.user.email, password: owner.password, device: { name: 'sdk', platform: 'test' } },
    WebSocket: WebSocket as unknown as WebSocketConstructor,
  })
  t.teardown(() => client.close())
  await client.connect()
  const task = client.createTask({ title: 'Quarterly report' })
  await client.whenSynced({ timeoutMs: 10_000 })
  task.setText('title', 'Quarterly report draft')
  await client.whenSynced({ timeoutMs: 10_000 })
  task.update({ status: 'done' })
  await client.whenSynced({ timeoutMs: 10_000 })
  t.equal(task.rev, 3)

  const first = await task.at(1)
  t.match(first, { id: task.id, rev: 1, title: 'Quarterly report', status: 'todo' })
  const latest = await task.at(3)
  t.match(latest, { rev: 3, title: task.snapshot.title, status: task.snapshot.status }, 'the latest rev is the current snapshot')
  await t.rejects(task.at(4), { code: 'bad_request' }, 'a rev ahead of the task')

  const d = await client.diff(task.id, 1, 3)
  t.same(Object.keys(d.fields).sort(), ['status', 'title'])
  t.same(d.fields.title, { from: 'Quarterly report', to: 'Quarterly report draft', changedBy: [owner.user.id], changes: 1 })

  const found = await client.searchTasks('report -weekly', { status: 'done' })
  t.same(found.items.map((x) => x.id), [task.id])
  t.match(found.items[0].match.snippet, /<mark>report<\/mark>/)
})
