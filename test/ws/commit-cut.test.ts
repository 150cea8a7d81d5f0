/**
 * Ack means durable, with PostgreSQL cut in the middle of a commit (through the
 * chaos fault proxy): after the statement reached PostgreSQL and before its
 * answer came back (the commit happened, the server never heard), and before
 * the statement left (nothing happened). Either way the client gets
 * `unavailable` or an ack whose op is in the log, never an ack for a lost op;
 * a resend of the same seq then gets the op's one commit.
 */
import t from 'tap'
import { randomUUID } from 'node:crypto'
import postgres from 'postgres'
import { FaultProxy, type CutPoint } from '../../chaos/fault-proxy.js'
import { startTestApp, registerOwner, api } from '../helpers/app.js'
import { createTestDatabaseUrl } from '../helpers/db.js'
import { TestSocket, type Msg } from './helpers.js'

const databaseUrl = await createTestDatabaseUrl(t)
const proxy = await FaultProxy.start(databaseUrl)
t.teardown(() => proxy.close())
const app = await startTestApp(t, { databaseUrl: proxy.urlFor(databaseUrl) })
const owner = await registerOwner(app.url)
// The log read straight from PostgreSQL, past the proxy.
const direct = postgres(databaseUrl, { max: 1, onnotice: () => {} })
t.teardown(() => direct.end())
const logged = async (clientId: string, seq: number) => direct<{ rev: number }[]>`select rev from task_ops where client_id = ${clientId} and seq = ${seq}`

/** Sends `op` and waits for its answer, an ack or an error. */
function answer(s: TestSocket, op: { seq: number }): Promise<Msg> {
  const reply = s.nextWhere((m) => (m.type === 'ack' || m.type === 'error') && m.seq === op.seq, 30_000)
  s.send(op)
  return reply
}

/** The first client chunk naming `marker` (the op's text, a parameter of the commit statement). */
const naming = (marker: string) => (chunk: Buffer) => chunk.includes(marker)

for (const at of ['reply', 'request'] as CutPoint[]) {
  t.test(`socket: PostgreSQL cut ${at === 'reply' ? 'after the commit statement ran, before its answer' : 'before the commit statement left'}`, async (t) => {
    const s = await TestSocket.ready(app.url, owner.accessToken)
    t.teardown(() => s.close())
    const taskId = randomUUID()
    await s.request({ type: 'create', taskId, seq: 1, task: { title: 'a' } }, 'ack')
    await s.request({ type: 'subscribe', taskIds: [taskId] }, 'subscribed')
    const marker = `cut-${randomUUID()}`
    const cut = proxy.cutOnce(naming(marker), at)
    const op = { type: 'op', taskId, baseRev: 1, seq: 2, op: { title: [1, marker] } }
    const first = await answer(s, op)
    await cut
    const rows = await logged(s.clientId, 2)
    if (first.type === 'ack') {
      t.same(rows.map((r) => r.rev), [first.rev], 'an ack names the rev its op is logged at')
    } else {
      t.equal(first.code, 'unavailable', 'no ack: unavailable, nothing else')
      t.equal(rows.length, at === 'reply' ? 1 : 0, at === 'reply' ? 'the statement did commit (the server cannot know)' : 'nothing was committed')
    }
    t.equal(s.all('ack').filter((m) => m.seq === 2).length, first.type === 'ack' ? 1 : 0, 'no other ack for it')

    // The same seq resent once PostgreSQL answers again: one commit, acked at its rev.
    let again = await answer(s, op)
    for (let i = 0; i < 20 && again.type !== 'ack'; i++) again = await answer(s, op)
    t.equal(again.type, 'ack')
    const after = await logged(s.clientId, 2)
    t.equal(after.length, 1, 'committed exactly once')
    t.equal(again.rev, after[0].rev, 'the resend is acked at the rev it is logged at')
    t.notOk(again.noop)
  })
}

t.test('push: PostgreSQL cut after the commit statement ran, before its answer', async (t) => {
  const client = api(app.url, owner.accessToken)
  const clientId = randomUUID()
  const taskId = randomUUID()
  await client.post('/api/sync/push', { clientId, mutations: [{ seq: 1, kind: 'create', taskId, task: { title: 'a' } }] })
  const marker = `cut-${randomUUID()}`
  const cut = proxy.cutOnce(naming(marker), 'reply')
  const batch = { clientId, mutations: [{ seq: 2, kind: 'op', taskId, baseRev: 1, op: { title: [1, marker] } }] }
  const res = await client.post('/api/sync/push', batch)
  await cut
  t.equal(res.status, 503, 'the push is answered unavailable')
  t.same(res.body.error.details?.results ?? [], [], 'with no result claimed for the cut mutation')
  t.same((await logged(clientId, 2)).length, 1, 'though it did commit')
  const again = await client.post('/api/sync/push', batch)
  t.same(again.body.results, [{ seq: 2, status: 'duplicate', rev: (await logged(clientId, 2))[0].rev }], 'the resend finds its one commit')
})
