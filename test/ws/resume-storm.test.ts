/**
 * Many sockets resuming at once (the survivors of a lost instance): their
 * subscribe reads are shared (fewer snapshot and op-log queries than sockets),
 * and each socket still gets exactly its own missed ops, then live ops once.
 */
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { startTestApp, registerOwner } from '../helpers/app.js'
import { TestSocket } from './helpers.js'

t.test('a burst of resumes on one task', async (t) => {
  const { app, url } = await startTestApp(t, { env: { REPLAY_WINDOW_OPS: '50' } })
  const owner = await registerOwner(url)
  const orgId = owner.user.orgId
  const writer = await TestSocket.ready(url, owner.accessToken)
  let seq = 0
  const taskId = randomUUID()
  await writer.request({ type: 'create', taskId, seq: ++seq, task: { title: '' } }, 'ack')
  let rev = 1
  const write = async (n: number) => {
    for (let i = 0; i < n; i++) {
      const s = ++seq
      rev = (await writer.request({ type: 'op', taskId, baseRev: rev, seq: s, op: { title: [`${s},`] } }, 'ack', (m) => m.seq === s)).rev
    }
  }
  await write(20) // rev 21

  const sockets = await Promise.all(Array.from({ length: 30 }, () => TestSocket.ready(url, owner.accessToken)))
  const before = { ...app.gateway.resumeReads.stats }
  // Each socket was away since a different rev (1..21, some past the current rev: sync_required).
  const since = sockets.map((_, i) => (i * 7) % 24)
  const replies = await Promise.all(sockets.map((s, i) => s.request({ type: 'subscribe', since: { [taskId]: since[i] } }, 'subscribed')))
  const stats = app.gateway.resumeReads.stats
  const asks = stats.snapshotAsks - before.snapshotAsks
  t.equal(asks, 30, 'one snapshot ask per socket')
  t.ok(stats.snapshotQueries - before.snapshotQueries < asks, `snapshot queries shared: ${stats.snapshotQueries - before.snapshotQueries} for ${asks} sockets`)
  const opAsks = stats.opsAsks - before.opsAsks
  t.ok(opAsks > 0 && stats.opsQueries - before.opsQueries < opAsks, `op-log queries shared: ${stats.opsQueries - before.opsQueries} for ${opAsks} asks`)

  const log = await app.sequencer.opsSince(orgId, taskId, 1, 100)
  for (const [i, s] of sockets.entries()) {
    const got = s.log.filter((m) => m.taskId === taskId && m.type !== 'ack')
    if (since[i] > 21) {
      t.same(replies[i].taskIds, [], `socket ${i}: since ${since[i]} ahead, not subscribed`)
      t.match(got, [{ type: 'sync_required', taskId }])
      continue
    }
    t.same(replies[i].taskIds, [taskId])
    t.same(got, log.filter((e) => e.rev > since[i]), `socket ${i}: exactly the ops after ${since[i]}`)
  }
  // Live from there, once each.
  await write(1)
  for (const [i, s] of sockets.entries()) {
    if (since[i] > 21) continue
    await s.next('op', (m) => m.taskId === taskId && m.rev === 22)
    t.equal(s.log.filter((m) => m.taskId === taskId && m.rev === 22).length, 1, `socket ${i}: rev 22 once`)
  }
  for (const s of sockets) s.close()
  writer.close()
})
