/**
 * Two instances sharing PostgreSQL and Redis; clients on both submit concurrent
 * random ops to a few tasks. Every client must see a gap-free, duplicate-free
 * stream per task, identical across clients and equal to the op log; every
 * acked op is in the log exactly once; replaying the log gives the snapshot.
 */
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { startTestApp, registerOwner } from '../helpers/app.js'
import { taskType } from '../../src/domain/index.js'
import type { TaskOp } from '../../src/domain/types.js'
import { TestSocket, until, type Msg } from './helpers.js'

const TASKS = 3
const CLIENTS_PER_INSTANCE = 3
const OPS_PER_CLIENT = 25

/** An op that applies to any state of the task (text inserted at 0, sets, tag edits). */
function randomOp(i: number, who: number): TaskOp {
  switch (Math.floor(Math.random() * 5)) {
    case 0:
      return { title: [`c${who}.${i} `] }
    case 1:
      return { description: [`${who}:${i}\n`] }
    case 2:
      return { priority: { set: Math.floor(Math.random() * 5) } }
    case 3:
      return { status: { set: (['todo', 'in_progress', 'in_review', 'done'] as const)[Math.floor(Math.random() * 4)] } }
    default:
      return Math.random() < 0.6 ? { tags: { add: [`t${(i + who) % 7}`] } } : { tags: { remove: [`t${i % 7}`] } }
  }
}

t.test('two instances: concurrent ops reach every client in order, once, identical to the log', async (t) => {
  const a = await startTestApp(t)
  const b = await startTestApp(t, { databaseUrl: a.databaseUrl, redisPrefix: a.redisPrefix })
  const owner = await registerOwner(a.url)
  const orgId = owner.user.orgId

  const creator = await TestSocket.ready(a.url, owner.accessToken)
  const taskIds = Array.from({ length: TASKS }, () => randomUUID())
  for (const [i, taskId] of taskIds.entries()) {
    await creator.request({ type: 'create', taskId, seq: i + 1, task: { title: `task ${i}` } }, 'ack')
  }

  const clients: TestSocket[] = []
  for (const app of [a, b]) {
    for (let i = 0; i < CLIENTS_PER_INSTANCE; i++) {
      const c = await TestSocket.ready(app.url, owner.accessToken)
      const sub = await c.request({ type: 'subscribe', taskIds }, 'subscribed')
      t.same(sub.taskIds, taskIds)
      clients.push(c)
    }
  }
  // An org-wide subscriber on B: no snapshots, ops as they come.
  const watcher = await TestSocket.ready(b.url, owner.accessToken)
  await watcher.request({ type: 'subscribe', all: true }, 'subscribed')

  const acks: { clientId: string; seq: number; taskId: string; rev: number }[] = []
  await Promise.all(
    clients.map(async (c, who) => {
      for (let seq = 1; seq <= OPS_PER_CLIENT; seq++) {
        const taskId = taskIds[Math.floor(Math.random() * TASKS)]
        const seen = [...c.all('snapshot'), ...c.all('op'), ...c.all('ack')].filter((m) => m.taskId === taskId)
        const baseRev = Math.max(...seen.map((m) => m.rev ?? 0))
        const ack = await c.request({ type: 'op', taskId, baseRev, seq, op: randomOp(seq, who) }, 'ack', (m) => m.seq === seq)
        acks.push({ clientId: c.clientId, seq, taskId, rev: ack.rev })
      }
    }),
  )

  const finalRevs = new Map<string, number>()
  for (const taskId of taskIds) finalRevs.set(taskId, (await a.app.sequencer.snapshot(orgId, taskId))!.rev)
  const revOf = (m: Msg) => m.rev as number
  const lastSeen = (c: TestSocket, taskId: string) =>
    Math.max(0, ...[...c.all('snapshot'), ...c.all('op'), ...c.all('ack')].filter((m) => m.taskId === taskId).map(revOf))
  await until(() => clients.every((c) => taskIds.every((id) => lastSeen(c, id) === finalRevs.get(id))), 'every client at the final revs')
  await until(() => taskIds.every((id) => lastSeen(watcher, id) === finalRevs.get(id)), 'the org watcher at the final revs')

  for (const taskId of taskIds) {
    const log = await a.app.sequencer.opsSince(orgId, taskId, 1, 10_000)
    t.same(log.map(revOf), Array.from({ length: finalRevs.get(taskId)! }, (_, i) => i + 1), 'the log has every rev once')
    const byRev = new Map(log.map((e) => [e.rev, e]))

    for (const c of [...clients, watcher]) {
      const snap = c.all('snapshot').find((m) => m.taskId === taskId)
      // The stream as the client saw it: ops of others and acks of its own, in arrival order.
      const stream = c.log.filter((m) => (m.type === 'op' || (m.type === 'ack' && !m.noop)) && m.taskId === taskId && m.rev !== undefined)
      const revs = stream.map(revOf)
      const start = snap ? snap.rev + 1 : revs[0]
      t.same(revs, Array.from({ length: finalRevs.get(taskId)! - start + 1 }, (_, i) => start + i), `client ${c.clientId.slice(0, 8)} gap-free and in order on ${taskId.slice(0, 8)}`)
      for (const m of stream) {
        if (m.type === 'op') t.same(m, byRev.get(m.rev), 'the op as logged')
        else t.equal(byRev.get(m.rev)?.clientId, c.clientId, 'an ack only for its own op')
      }
      t.notOk(stream.some((m) => m.type === 'op' && m.clientId === c.clientId), 'never its own op echoed')
    }

    // Replaying the log from create() gives the stored snapshot.
    let content = taskType.create()
    for (const e of log) content = taskType.apply(content, e.op)
    const stored = (await b.app.sequencer.snapshot(orgId, taskId))!
    const { id, rev, clock, createdAt, updatedAt, updatedBy, ...storedContent } = stored
    void id, rev, clock, createdAt, updatedAt, updatedBy
    t.same(content, storedContent, 'log replay equals the snapshot')
  }

  // Every acked op is in the log exactly once, at its acked rev.
  t.equal(acks.length, clients.length * OPS_PER_CLIENT)
  const logged = new Map<string, number>()
  for (const taskId of taskIds) {
    for (const e of await a.app.sequencer.opsSince(orgId, taskId, 1, 10_000)) {
      if (e.clientId) logged.set(`${e.clientId}:${e.seq}`, (logged.get(`${e.clientId}:${e.seq}`) ?? 0) + 1)
    }
  }
  for (const ack of acks) {
    const e = (await a.app.sequencer.opsSince(orgId, ack.taskId, ack.rev, 1))[0]
    // An op that became identity after transform commits nothing and is acked with the current rev.
    if (e?.clientId === ack.clientId && e.seq === ack.seq) t.equal(logged.get(`${ack.clientId}:${ack.seq}`), 1)
    else t.notOk(logged.has(`${ack.clientId}:${ack.seq}`), 'an identity op is not in the log')
  }
  t.ok([...logged.values()].every((n) => n === 1), 'no (clientId, seq) twice in the log')

  for (const c of [...clients, watcher, creator]) c.close()
})
