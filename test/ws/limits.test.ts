/**
 * Instance-level protection: the socket cap (1013), the heartbeat (a socket
 * silent for two beats is dropped), and the gateway's metrics.
 */
import t from 'tap'
import WebSocket from 'ws'
import { startTestApp, registerOwner } from '../helpers/app.js'
import { TestSocket, sleep, until } from './helpers.js'

t.test('over the socket cap: accepted, then closed with 1013', async (t) => {
  const { app, url } = await startTestApp(t, { env: { WS_MAX_SOCKETS: '2' } })
  const owner = await registerOwner(url)
  const first = await TestSocket.ready(url, owner.accessToken)
  const second = await TestSocket.ready(url, owner.accessToken)
  const third = await TestSocket.open(url, owner.accessToken)
  const closed = await third.closed
  t.equal(closed.code, 1013)
  t.equal(app.connections.count(), 2)
  second.close()
  await until(() => app.connections.count() === 1, 'a slot freed')
  const fourth = await TestSocket.ready(url, owner.accessToken)
  t.ok(fourth, 'a freed slot is usable')
  first.close()
  fourth.close()
})

t.test('heartbeat: pings every beat; a socket that answers none is dropped after two', async (t) => {
  const { url } = await startTestApp(t, { env: { WS_HEARTBEAT_MS: '200' } })
  const owner = await registerOwner(url)
  const alive = await TestSocket.ready(url, owner.accessToken)
  let pings = 0
  alive.ws.on('ping', () => pings++)
  // A client that neither answers pings nor sends anything.
  const silent = new WebSocket(url.replace('http', 'ws') + '/ws', { headers: { authorization: `Bearer ${owner.accessToken}` }, autoPong: false })
  await new Promise((resolve) => silent.once('open', resolve))
  silent.send(JSON.stringify({ type: 'hello', clientId: crypto.randomUUID() }))
  const code = await new Promise<number>((resolve) => silent.once('close', resolve))
  t.equal(code, 1006, 'terminated without a close handshake')
  await sleep(300)
  t.ok(pings >= 2, `the live socket was pinged (${pings})`)
  t.equal(alive.ws.readyState, WebSocket.OPEN, 'a socket answering pings stays')
  alive.close()
})

t.test('heartbeat: pings are spread over the beat, each socket pinged once per beat', async (t) => {
  const { url } = await startTestApp(t, { env: { WS_HEARTBEAT_MS: '1000' } })
  const owner = await registerOwner(url)
  const sockets = await Promise.all(Array.from({ length: 20 }, () => TestSocket.ready(url, owner.accessToken)))
  const pingedAt: number[][] = sockets.map(() => [])
  sockets.forEach((s, i) => s.ws.on('ping', () => pingedAt[i].push(Date.now())))
  // One socket keeps talking: it is pinged all the same (clients may watch for pings).
  const talk = setInterval(() => sockets[0].send({ type: 'ping' }), 100)
  t.teardown(() => clearInterval(talk))
  // Once per beat each: whenever the last socket has had its second ping, none has had more than
  // one ping more than another (however late the timers run on a loaded machine).
  await until(() => pingedAt.every((p) => p.length >= 2), 'every socket pinged twice', 30_000)
  clearInterval(talk)
  const counts = pingedAt.map((p) => p.length)
  t.ok(Math.max(...counts) - Math.min(...counts) <= 1, `each socket pinged once per beat (${counts})`)
  const firsts = pingedAt.map((p) => p[0])
  const first = Math.min(...firsts)
  const inFirstTurn = firsts.filter((at) => at - first < 50).length
  t.ok(inFirstTurn < 20, `pings are spread over the beat, not one burst (${inFirstTurn} of 20 in the first 50 ms)`)
  t.ok(sockets.every((s) => s.ws.readyState === WebSocket.OPEN), 'everyone stays connected')
  for (const s of sockets) s.close()
})

t.test('metrics: sockets, messages in and out, ack latency', async (t) => {
  const { url } = await startTestApp(t)
  const owner = await registerOwner(url)
  const s = await TestSocket.ready(url, owner.accessToken)
  await s.request({ type: 'create', taskId: crypto.randomUUID(), seq: 1, task: {} }, 'ack')
  const text = await (await fetch(url + '/metrics')).text()
  const value = (name: string) => Number(text.match(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\d+(?:\\.\\d+)?)`, 'm'))?.[1])
  t.equal(value('tasksync_ws_sockets'), 1)
  t.ok(value('tasksync_ws_messages_in_total') >= 2)
  t.ok(value('tasksync_ws_messages_out_total') >= 2)
  t.equal(value('tasksync_ws_ack_seconds_count'), 1)
  s.close()
})
