/**
 * SIGTERM drain (app.close()): no new sockets, begun commits finish and are
 * acked, then every socket is closed with 1012.
 */
import t from 'tap'
import { randomUUID } from 'node:crypto'
import postgres from 'postgres'
import { startTestApp, registerOwner } from '../helpers/app.js'
import { TestSocket } from './helpers.js'

t.test('close: begun commits are acked, then every socket gets 1012', async (t) => {
  const { app, url, databaseUrl, close } = await startTestApp(t, { env: { SHUTDOWN_TIMEOUT_MS: '5000' } })
  const owner = await registerOwner(url)
  const writer = await TestSocket.ready(url, owner.accessToken)
  const watcher = await TestSocket.ready(url, owner.accessToken)
  const taskIds = Array.from({ length: 4 }, () => randomUUID())
  let seq = 0
  for (const taskId of taskIds) await writer.request({ type: 'create', taskId, seq: ++seq, task: {} }, 'ack')
  await watcher.request({ type: 'subscribe', taskIds }, 'subscribed')

  // A burst of ops whose commits are held by a lock on the tasks table (reads go on), so they
  // have certainly begun when the shutdown starts; the lock is let go once the drain has begun.
  const sql = postgres(databaseUrl, { max: 2, onnotice: () => {} })
  t.teardown(() => sql.end())
  const burst: number[] = []
  let closing!: Promise<void>
  await sql.begin(async (tx) => {
    await tx`lock table tasks in exclusive mode`
    for (let i = 0; i < 30; i++) {
      const s = ++seq
      burst.push(s)
      writer.send({ type: 'op', taskId: taskIds[i % taskIds.length], baseRev: 1, seq: s, op: { title: [`${s} `] } })
    }
    const deadline = Date.now() + 20_000
    for (;;) {
      const [{ n }] = await sql<{ n: number }[]>`select count(*)::int as n from pg_locks where relation = 'tasks'::regclass and not granted`
      if (n >= 1) break
      if (Date.now() > deadline) throw new Error('no commit reached the lock')
      await new Promise((r) => setTimeout(r, 20))
    }
    closing = close()
  })
  const refused = await TestSocket.open(url, owner.accessToken).then(
    (s) => (s.close(), false),
    () => true,
  )
  t.ok(refused, 'no new socket once the drain has begun')
  const [w, v] = await Promise.all([writer.closed, watcher.closed])
  t.equal(w.code, 1012)
  t.equal(v.code, 1012)
  await closing
  t.equal(app.connections.count(), 0)

  // Every op of the burst was answered before the close: acked, or refused as unavailable.
  const answered = new Map<number, string>()
  for (const m of writer.log) if ((m.type === 'ack' || m.type === 'error') && m.seq !== undefined) answered.set(m.seq, m.type === 'ack' ? 'ack' : m.code)
  for (const s of burst) t.ok(answered.get(s) === 'ack' || answered.get(s) === 'unavailable', `seq ${s}: ${answered.get(s)}`)
  // The commit statement waiting on the lock when the drain began holds at least one op: it was
  // finished and acked (with every op refused, this fails).
  const acked = burst.filter((s) => answered.get(s) === 'ack')
  t.ok(acked.length >= 1, `begun commits were acked (${acked.length} of ${burst.length})`)
  // And nothing was committed without its ack reaching the client.
  const logged = await sql<{ seq: string }[]>`select seq from task_ops where client_id = ${writer.clientId} and rev > 1`
  t.same(logged.map((r) => Number(r.seq)).sort((x, y) => x - y), acked, 'exactly the acked ops are in the log')
  // Ops the watcher saw were all committed ones.
  t.ok(watcher.all('op').every((m) => logged.some((r) => Number(r.seq) === m.seq)))
})
