/**
 * Lost publications and outages. Redis pub/sub is at most once: a publication
 * dropped on the way, or missed while an instance's Redis connection is down,
 * must be repaired from the op log, never skipped. PostgreSQL down: `unavailable`,
 * never a false ack, and the instance recovers by itself.
 */
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { startTestApp, registerOwner, type TestApp } from '../helpers/app.js'
import { createTestDatabaseUrl, TEST_REDIS_URL } from '../helpers/db.js'
import { TcpProxy, TestSocket, until, type Msg } from './helpers.js'

/** Makes `app` drop its next `n` publications of commits (a test hook on the real bus). */
function dropPublications(t: { teardown(fn: () => void): void }, app: TestApp['app'], n: number): () => number {
  const publish = app.bus.publish
  let dropped = 0
  app.bus.publish = async function (this: typeof app.bus, channel: string, payload: string) {
    if (dropped < n && channel.startsWith('org:') && JSON.parse(payload).kind === 'op') {
      dropped++
      return
    }
    return publish.call(this, channel, payload)
  }
  t.teardown(() => void (app.bus.publish = publish))
  return () => dropped
}

const opRevs = (s: TestSocket, taskId: string) => s.log.filter((m: Msg) => m.type === 'op' && m.taskId === taskId).map((m) => m.rev)
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i)

t.test('lost publications are repaired from the op log', async (t) => {
  const a = await startTestApp(t)
  // No probe within the test's time: only the gap (a later rev) can reveal the loss here.
  const b = await startTestApp(t, { databaseUrl: a.databaseUrl, redisPrefix: a.redisPrefix, env: { WS_PROBE_MS: '600000' } })
  // Frequent probes: the loss of the last publication is found by the probe.
  const c = await startTestApp(t, { databaseUrl: a.databaseUrl, redisPrefix: a.redisPrefix, env: { WS_PROBE_MS: '200' } })
  const owner = await registerOwner(a.url)
  const writer = await TestSocket.ready(a.url, owner.accessToken)
  const taskId = randomUUID()
  let seq = 0
  let rev = (await writer.request({ type: 'create', taskId, seq: ++seq, task: {} }, 'ack')).rev
  const write = async () => {
    const s = ++seq
    rev = (await writer.request({ type: 'op', taskId, baseRev: rev, seq: s, op: { title: [`${s} `] } }, 'ack', (m) => m.seq === s)).rev
  }
  const onB = await TestSocket.ready(b.url, owner.accessToken)
  const onC = await TestSocket.ready(c.url, owner.accessToken)
  for (const s of [onB, onC]) await s.request({ type: 'subscribe', taskIds: [taskId] }, 'subscribed')

  t.test('a dropped publication followed by another op', async (t) => {
    const dropped = dropPublications(t, a.app, 2)
    await write() // rev 2: lost
    await write() // rev 3: lost
    t.equal(dropped(), 2)
    await write() // rev 4: published, reveals the gap
    await onB.next('op', (m) => m.rev === 4)
    t.same(opRevs(onB, taskId), [2, 3, 4], 'B filled 2 and 3 from the log, then 4, in order')
  })

  t.test('a dropped last publication', async (t) => {
    dropPublications(t, a.app, 1)
    await write() // rev 5: lost, and nothing follows it
    await onC.next('op', (m) => m.rev === 5)
    t.same(opRevs(onC, taskId), [2, 3, 4, 5], 'C found rev 5 by probing the latest rev')
  })

  t.test('reordered publications are delivered in rev order', async (t) => {
    // Deliver two notices straight into B's bus handler, newest first.
    const [e6, e7] = [6, 7].map((r) => ({ kind: 'op', from: 'elsewhere', orgId: owner.user.orgId, taskId, rev: r, projectId: null }))
    await write() // rev 6
    await write() // rev 7
    const events = await a.app.sequencer.opsSince(owner.user.orgId, taskId, 6, 2)
    await b.app.bus.publish(`org:${owner.user.orgId}`, JSON.stringify({ ...e7, event: events[1] }))
    await b.app.bus.publish(`org:${owner.user.orgId}`, JSON.stringify({ ...e6, event: events[0] }))
    await onB.next('op', (m) => m.rev === 7)
    t.same(opRevs(onB, taskId), range(2, 7), 'no duplicate, no reorder')
  })

  t.teardown(() => [writer, onB, onC].forEach((s) => s.close()))
})

t.test('an instance whose Redis goes away keeps delivering (from the log) and recovers', async (t) => {
  const proxy = await TcpProxy.start(TEST_REDIS_URL)
  t.teardown(() => proxy.close())
  const a = await startTestApp(t, { env: { WS_PROBE_MS: '200' } })
  const b = await startTestApp(t, {
    databaseUrl: a.databaseUrl,
    redisPrefix: a.redisPrefix,
    env: { REDIS_URL: proxy.urlFor(TEST_REDIS_URL), WS_PROBE_MS: '200' },
  })
  const owner = await registerOwner(a.url)
  const onA = await TestSocket.ready(a.url, owner.accessToken)
  const onB = await TestSocket.ready(b.url, owner.accessToken)
  const taskId = randomUUID()
  await onA.request({ type: 'create', taskId, seq: 1, task: {} }, 'ack')
  for (const s of [onA, onB]) await s.request({ type: 'subscribe', taskIds: [taskId] }, 'subscribed')
  let rev = 1
  let seqA = 1
  let seqB = 0
  const writeOn = async (s: TestSocket, seq: number) => {
    rev = (await s.request({ type: 'op', taskId, baseRev: rev, seq, op: { title: [`${seq} `] } }, 'ack', (m) => m.seq === seq)).rev
  }

  proxy.cut()
  await until(() => b.app.bus.status() === 'down', "B's bus down")
  await writeOn(onA, ++seqA) // rev 2: B misses the publication
  await writeOn(onA, ++seqA) // rev 3
  await onB.next('op', (m) => m.rev === 3)
  // B commits while its Redis is away: the ack still comes (PostgreSQL has it); A repairs from the log.
  await writeOn(onB, ++seqB) // rev 4
  await onA.next('op', (m) => m.rev === 4)

  proxy.restore()
  await until(() => b.app.bus.status() === 'up', "B's bus back")
  await writeOn(onA, ++seqA) // rev 5
  await writeOn(onB, ++seqB) // rev 6
  await onB.next('op', (m) => m.rev === 5)
  await onA.next('op', (m) => m.rev === 6)
  t.same(opRevs(onB, taskId), [2, 3, 5], 'B: every op of others, in order, once')
  t.same(opRevs(onA, taskId), [4, 6], 'A: every op of others, in order, once')
  onA.close()
  onB.close()
})

t.test('PostgreSQL unreachable: unavailable, no false ack, and recovery without a restart', async (t) => {
  const databaseUrl = await createTestDatabaseUrl(t)
  const proxy = await TcpProxy.start(databaseUrl)
  t.teardown(() => proxy.close())
  const { url } = await startTestApp(t, { databaseUrl: proxy.urlFor(databaseUrl) })
  const owner = await registerOwner(url)
  const s = await TestSocket.ready(url, owner.accessToken)
  const taskId = randomUUID()
  await s.request({ type: 'create', taskId, seq: 1, task: { title: 'a' } }, 'ack')
  await s.request({ type: 'subscribe', taskIds: [taskId] }, 'subscribed')

  proxy.cut()
  const down = await s.request({ type: 'op', taskId, baseRev: 1, seq: 2, op: { title: [1, 'b'] } }, 'error')
  t.match(down, { code: 'unavailable', ref: taskId, seq: 2 })
  // A read needing a new connection fails only after postgres.js gave up reconnecting
  // (~5 s here, more on a loaded CI box): wait well past that.
  s.send({ type: 'subscribe', taskIds: [randomUUID()] })
  const sub = s.next('subscribed', () => true, 30_000)
  t.equal((await s.next('error', () => true, 30_000)).code, 'unavailable', 'a subscribe read fails the same way')
  t.same((await sub).taskIds, [])
  t.equal(s.all('ack').length, 1, 'no ack while storage is down')

  proxy.restore()
  // The same (clientId, seq) resent until storage is back: committed once.
  let ack: Msg | undefined
  await until(async () => {
    const reply = s.nextWhere((m) => (m.type === 'ack' || m.type === 'error') && m.seq === 2, 15_000)
    s.send({ type: 'op', taskId, baseRev: 1, seq: 2, op: { title: [1, 'b'] } })
    const m = await reply
    if (m.type === 'ack') ack = m
    return ack !== undefined
  }, 'an ack after recovery', 30_000)
  t.equal(ack!.rev, 2)
  s.close()
})
