/**
 * Every bad-input case of PROTOCOL.md section 3, through the real app: a clear
 * error with the right code (the socket stays open), or the right close code.
 */
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { startTestApp, registerOwner, addMember, TEST_JWT_SECRET } from '../helpers/app.js'
import { loadSigningKeys, signAccessToken } from '../../src/auth/tokens.js'
import { TestSocket } from './helpers.js'

const env = {
  // Long: a loaded machine may take a while between open and hello; the hello timeout has its own app below.
  WS_HELLO_TIMEOUT_MS: '60000',
  WS_MAX_MESSAGE_BYTES: '4096',
  WS_RATE_PER_S: '20',
  WS_RATE_BURST: '20',
}

t.test('gateway protocol', async (t) => {
  const { app, url } = await startTestApp(t, { env })
  const owner = await registerOwner(url)
  const token = owner.accessToken

  /** A welcomed socket that has created one task; returns both. */
  const withTask = async () => {
    const s = await TestSocket.ready(url, token)
    const taskId = randomUUID()
    const ack = await s.request({ type: 'create', taskId, seq: 1, task: { title: 'hello' } }, 'ack')
    t.same(ack, { type: 'ack', taskId, seq: 1, rev: 1 })
    return { s, taskId }
  }

  t.test('no valid token: HTTP 401 in the error shape, no upgrade', async (t) => {
    for (const bad of [null, 'garbage', token.slice(0, -4) + 'AAAA']) {
      const err = (await TestSocket.open(url, bad).then(
        () => null,
        (e) => e,
      )) as { status: number; body: string } | null
      t.equal(err?.status, 401, `token ${bad === null ? 'missing' : 'invalid'}`)
      t.equal(JSON.parse(err!.body).error.code, 'unauthorized')
    }
  })

  t.test('the token may come in ?access_token=', async (t) => {
    const s = await TestSocket.open(url, token, { inQuery: true })
    s.send({ type: 'hello', clientId: s.clientId })
    const welcome = await s.next('welcome')
    t.equal(welcome.instanceId, app.instanceId)
    t.equal(welcome.heartbeatMs, app.config.WS_HEARTBEAT_MS)
    t.match(welcome.sessionId, /^[0-9a-f-]{36}$/)
    t.ok(Math.abs(Date.parse(welcome.serverTime) - Date.now()) < 60_000)
    s.close()
  })

  t.test('malformed frames get bad_request and the socket stays open', async (t) => {
    const s = await TestSocket.ready(url, token)
    const cases: [string, RegExp][] = [
      ['not json', /JSON object/],
      ['[1,2]', /JSON object/],
      ['42', /JSON object/],
      ['null', /JSON object/],
      ['{"no":"type"}', /type/],
      ['{"type":"launch"}', /unknown message type/],
      ['{"type":"op","taskId":"x","baseRev":0,"seq":1,"op":{}}', /taskId/],
      [JSON.stringify({ type: 'op', taskId: randomUUID(), seq: 1, op: {} }), /baseRev/],
      [JSON.stringify({ type: 'op', taskId: randomUUID(), baseRev: 0, seq: 0, op: {} }), /seq/],
      [JSON.stringify({ type: 'op', taskId: randomUUID(), baseRev: 0, seq: 1, op: [] }), /op/],
      [JSON.stringify({ type: 'subscribe', taskIds: 'all' }), /taskIds/],
      [JSON.stringify({ type: 'subscribe', since: { nope: 1 } }), /since/],
      [JSON.stringify({ type: 'hello', clientId: 7 }), /clientId/],
      [JSON.stringify({ type: 'comment', action: 'shout', commentId: randomUUID(), taskId: randomUUID(), seq: 1 }), /action/],
      [JSON.stringify({ type: 'comment', action: 'create', commentId: randomUUID(), taskId: randomUUID(), seq: 1 }), /body/],
    ]
    for (const [frame, message] of cases) {
      s.send(frame)
      const err = await s.next('error')
      t.equal(err.code, 'bad_request', frame)
      t.match(err.message, message)
    }
    t.same((await s.request({ type: 'ping' }, 'pong')).type, 'pong', 'still open')
    s.close()
  })

  t.test('before hello only hello and ping; a second hello is refused', async (t) => {
    const s = await TestSocket.open(url, token)
    t.ok(await s.request({ type: 'ping' }, 'pong'))
    const err = await s.request({ type: 'subscribe', all: true }, 'error')
    t.equal(err.code, 'bad_request')
    t.match(err.message, /hello/)
    s.send({ type: 'hello', clientId: s.clientId })
    await s.next('welcome')
    const again = await s.request({ type: 'hello', clientId: s.clientId }, 'error')
    t.equal(again.code, 'bad_request')
    s.close()
  })

  t.test('messages pipelined right behind hello wait for the welcome', async (t) => {
    const s = await TestSocket.open(url, token)
    const taskId = randomUUID()
    s.send({ type: 'hello', clientId: s.clientId })
    s.send({ type: 'create', taskId, seq: 1, task: { title: 'eager' } })
    await s.next('welcome')
    t.same(await s.next('ack'), { type: 'ack', taskId, seq: 1, rev: 1 })
    s.close()
  })

  t.test('no hello in time: closed with 1008', async (t) => {
    const short = await startTestApp(t, { env: { ...env, WS_HELLO_TIMEOUT_MS: '400' } })
    const s = await TestSocket.open(short.url, (await registerOwner(short.url)).accessToken)
    const closed = await s.closed
    t.equal(closed.code, 1008)
  })

  t.test('a binary frame: closed with 1008', async (t) => {
    const s = await TestSocket.ready(url, token)
    s.ws.send(Buffer.from([1, 2, 3]), { binary: true })
    t.equal((await s.closed).code, 1008)
  })

  t.test('a message over WS_MAX_MESSAGE_BYTES: closed with 1009', async (t) => {
    const s = await TestSocket.ready(url, token)
    s.send({ type: 'ping', pad: 'x'.repeat(5000) })
    t.equal((await s.closed).code, 1009)
  })

  t.test('flooding: rate_limited errors, then 1008', async (t) => {
    const s = await TestSocket.ready(url, token)
    for (let i = 0; i < 200 && s.ws.readyState === 1; i++) s.send({ type: 'ping' })
    const closed = await s.closed
    t.equal(closed.code, 1008)
    const limited = s.all('error').filter((e) => e.code === 'rate_limited')
    t.ok(limited.length >= 5, `rate_limited errors came first (${limited.length})`)
    t.ok(s.all('pong').length >= 15, 'the burst (less the hello) was served')
  })

  t.test('a clientId bound to another device is forbidden at hello', async (t) => {
    const a = await TestSocket.ready(url, token)
    const member = await addMember(url, token, 'member')
    const b = await TestSocket.open(url, member.accessToken)
    const err = await b.request({ type: 'hello', clientId: a.clientId }, 'error')
    t.equal(err.code, 'forbidden')
    // The socket stays usable with a clientId of its own.
    b.send({ type: 'hello', clientId: randomUUID() })
    t.ok(await b.next('welcome'))
    a.close()
    b.close()
  })

  t.test('subscribe: missing tasks and other organizations’ tasks are not_found, and not subscribed', async (t) => {
    const { s, taskId } = await withTask()
    const other = await registerOwner(url)
    const o = await TestSocket.ready(url, other.accessToken)
    const missing = randomUUID()
    const reply = o.request({ type: 'subscribe', taskIds: [taskId, missing], projectIds: [randomUUID()] }, 'subscribed')
    const errors = [await o.next('error'), await o.next('error'), await o.next('error')]
    t.same(errors.map((e) => e.code), ['not_found', 'not_found', 'not_found'])
    t.same(new Set(errors.map((e) => e.ref)).has(taskId), true, 'the foreign task is answered like a missing one')
    t.same(await reply, { type: 'subscribed', taskIds: [], projectIds: [], all: false })
    t.equal(o.all('snapshot').length, 0)
    s.close()
    o.close()
  })

  t.test('invalid_op, task_deleted, rev ahead and viewer mutations change nothing', async (t) => {
    const { s, taskId } = await withTask()
    const bad = await s.request({ type: 'op', taskId, baseRev: 1, seq: 2, op: { priority: { set: 9 } } }, 'error')
    t.match(bad, { code: 'invalid_op', ref: taskId, seq: 2 })
    const unknown = await s.request({ type: 'op', taskId, baseRev: 1, seq: 3, op: { colour: { set: 'red' } } }, 'error')
    t.equal(unknown.code, 'invalid_op')
    const ahead = await s.request({ type: 'op', taskId, baseRev: 7, seq: 4, op: { priority: { set: 1 } } }, 'error')
    t.equal(ahead.code, 'bad_request')
    const gone = await s.request({ type: 'op', taskId: randomUUID(), baseRev: 1, seq: 5, op: { priority: { set: 1 } } }, 'error')
    t.equal(gone.code, 'not_found')
    const del = await s.request({ type: 'op', taskId, baseRev: 1, seq: 6, op: { delete: true } }, 'ack')
    t.equal(del.rev, 2)
    const after = await s.request({ type: 'op', taskId, baseRev: 2, seq: 7, op: { title: ['x'] } }, 'error')
    t.equal(after.code, 'task_deleted')
    const sub = await s.request({ type: 'subscribe', taskIds: [taskId] }, 'subscribed')
    t.same(sub.taskIds, [], 'a deleted task is not subscribed')
    t.same(s.all('task_deleted'), [{ type: 'task_deleted', taskId, rev: 2 }])
    const snap = await app.sequencer.snapshot(owner.user.orgId, taskId)
    t.equal(snap?.rev, 2, 'nothing was committed by the refused ops')

    const viewer = await addMember(url, token, 'viewer')
    const v = await TestSocket.ready(url, viewer.accessToken)
    const { s: s2, taskId: t2 } = await withTask()
    const denied = await v.request({ type: 'op', taskId: t2, baseRev: 1, seq: 1, op: { title: ['x'] } }, 'error')
    t.equal(denied.code, 'forbidden')
    s.close()
    s2.close()
    v.close()
  })

  t.test('a resent (clientId, seq) gets its original ack', async (t) => {
    const { s, taskId } = await withTask()
    const first = await s.request({ type: 'op', taskId, baseRev: 1, seq: 2, op: { title: [5, ' world'] } }, 'ack')
    const again = await s.request({ type: 'op', taskId, baseRev: 1, seq: 2, op: { title: [5, ' world'] } }, 'ack')
    t.equal(again.rev, first.rev)
    t.equal((await app.sequencer.snapshot(owner.user.orgId, taskId))?.title, 'hello world')
    s.close()
  })

  t.test('auth: refresh in band; another identity is refused and closed; expiry closes with 1008', async (t) => {
    const keys = await loadSigningKeys({ JWT_SECRET: TEST_JWT_SECRET })
    const principal = { orgId: owner.user.orgId, userId: owner.user.id, deviceId: owner.device.id, role: owner.user.role }
    const short = await signAccessToken(keys, principal, 2)
    const s = await TestSocket.ready(url, short.token)
    const fresh = await signAccessToken(keys, principal, 600)
    const authed = await s.request({ type: 'auth', token: fresh.token }, 'authed')
    t.equal(authed.expiresAt, fresh.expiresAt.toISOString())
    const invalid = await s.request({ type: 'auth', token: 'nope' }, 'error')
    t.equal(invalid.code, 'unauthorized')
    const member = await addMember(url, token, 'member')
    const err = await s.request({ type: 'auth', token: member.accessToken }, 'error')
    t.equal(err.code, 'unauthorized')
    t.equal((await s.closed).code, 1008)

    const expiring = await TestSocket.ready(url, (await signAccessToken(keys, principal, 1)).token)
    const closed = await expiring.closed
    t.equal(closed.code, 1008)
    t.match(closed.reason, /expired/)
  })

  t.test('ping answers pong with the server time', async (t) => {
    const s = await TestSocket.ready(url, token)
    const pong = await s.request({ type: 'ping' }, 'pong')
    t.ok(Math.abs(Date.parse(pong.serverTime) - Date.now()) < 60_000)
    s.close()
  })
})
