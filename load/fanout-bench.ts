/**
 * The fan-out's socket writes alone: one process holds --sockets server-side ws
 * sockets (a child process holds the clients and counts what arrives) and sends
 * --messages op-sized messages to every socket, one message per tick, two ways:
 *   - ws.send: what the outbox did before (per socket: cork, ws.send(payload), uncork;
 *     ws frames it for each socket: a header Buffer and a write list each time);
 *   - frame:   encode builds the whole frame once; per socket: cork, stream.write(frame), uncork
 *     (what the outbox did until branch oppath-server);
 *   - write:   the same frame, per socket one plain stream.write(frame), not corked (what
 *     the outbox does now when a socket has one message in the tick, the steady case).
 * Reports the sending process's CPU per message per socket, alternating the two ways
 * --rounds times (medians), so a busy box skews both alike.
 *
 *   npx tsx load/fanout-bench.ts [--sockets 1000] [--messages 200] [--rounds 3]
 */
import { fork } from 'node:child_process'
import { createServer } from 'node:http'
import { loadavg } from 'node:os'
import { parseArgs } from 'node:util'
import WebSocket, { WebSocketServer } from 'ws'
import { encode, payloadOf } from '../src/ws/wire.js'

if (process.argv[2] === '--client') {
  // Child: open the sockets, count messages, tell the parent when a batch has fully arrived.
  const [url, count] = [process.argv[3], Number(process.argv[4])]
  let received = 0
  let expected = Infinity
  const check = () => {
    if (received >= expected) {
      process.send!({ type: 'received', received })
      received = 0
      expected = Infinity
    }
  }
  process.on('message', (m: { type: string; expected: number }) => {
    if (m.type === 'expect') {
      expected = m.expected
      check()
    }
  })
  let open = 0
  for (let i = 0; i < count; i++) {
    const ws = new WebSocket(url, { perMessageDeflate: false })
    ws.on('open', () => ++open === count && process.send!({ type: 'open' }))
    ws.on('message', () => {
      received++
      check()
    })
  }
} else {
  const { values } = parseArgs({ options: { sockets: { type: 'string', default: '1000' }, messages: { type: 'string', default: '200' }, rounds: { type: 'string', default: '3' } } })
  const SOCKETS = Number(values.sockets)
  const MESSAGES = Number(values.messages)
  const ROUNDS = Number(values.rounds)
  const server = createServer()
  const wss = new WebSocketServer({ server, perMessageDeflate: false })
  const sockets: { ws: WebSocket; stream: { cork(): void; uncork(): void; write(b: Buffer): boolean } }[] = []
  wss.on('connection', (ws) => sockets.push({ ws, stream: (ws as unknown as { _socket: never })._socket }))
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const port = (server.address() as { port: number }).port
  const child = fork(new URL(import.meta.url).pathname, ['--client', `ws://127.0.0.1:${port}`, String(SOCKETS)], { execArgv: ['--import', 'tsx'] })
  const next = (type: string) => new Promise<void>((r) => child.once('message', (m: { type: string }) => m.type === type && r()))
  await next('open')
  while (sockets.length < SOCKETS) await new Promise((r) => setImmediate(r))

  const op = (i: number) => ({ type: 'op' as const, taskId: '6f1c2a8e-4b1d-4c3e-9f00-1a2b3c4d5e6f', rev: i, op: { title: [12, 'x'], customFields: { lt: { set: Date.now() } } }, clientId: '0b7e1f2a-3c4d-4e5f-8a9b-0c1d2e3f4a5b', seq: i, userId: '1a2b3c4d-5e6f-4a8b-9c0d-1e2f3a4b5c6d', at: new Date().toISOString() })
  const ways = {
    'ws.send': (i: number) => {
      const payload = payloadOf(encode(op(i) as never))
      for (const s of sockets) {
        s.stream.cork()
        s.ws.send(payload, { binary: false })
        s.stream.uncork()
      }
    },
    frame: (i: number) => {
      const frame = encode(op(i) as never)
      for (const s of sockets) {
        s.stream.cork()
        s.stream.write(frame)
        s.stream.uncork()
      }
    },
    write: (i: number) => {
      const frame = encode(op(i) as never)
      for (const s of sockets) s.stream.write(frame)
    },
  }
  async function run(send: (i: number) => void): Promise<number> {
    const arrived = next('received')
    child.send({ type: 'expect', expected: MESSAGES * SOCKETS })
    const start = process.cpuUsage()
    for (let i = 0; i < MESSAGES; i++) {
      send(i)
      await new Promise((r) => setImmediate(r))
    }
    await arrived
    const d = process.cpuUsage(start)
    return ((d.user + d.system) / (MESSAGES * SOCKETS)) // µs per message per socket
  }
  const results: Record<string, number[]> = { 'ws.send': [], frame: [], write: [] }
  await run(ways.frame) // warm-up
  await run(ways['ws.send'])
  for (let r = 0; r < ROUNDS; r++) for (const [name, send] of Object.entries(ways)) results[name].push(await run(send))
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
  console.log(
    `${SOCKETS} sockets × ${MESSAGES} messages, ${ROUNDS} alternating rounds, load average ${loadavg()[0].toFixed(1)}: ` +
      Object.entries(results).map(([n, xs]) => `${n} ${median(xs).toFixed(2)} µs CPU per message per socket (${xs.map((x) => x.toFixed(2)).join(', ')})`).join('; '),
  )
  child.kill()
  wss.close()
  server.close()
}
