import t from 'tap'
import { Flusher, Outbox, type OutboundSocket } from '../../src/ws/outbox.js'
import { TokenBucket } from '../../src/ws/token-bucket.js'
import { payloadOf, textFrame } from '../../src/ws/wire.js'

/** A socket that records what it is given; `backlog` plays bytes the kernel has not taken yet. */
function fakeSocket() {
  const sent: string[] = []
  const closes: [number, string][] = []
  const corks: string[] = []
  const socket: OutboundSocket & { backlog: number } = {
    readyState: 1,
    backlog: 0,
    get bufferedAmount() {
      return this.backlog
    },
    send: (data) => void sent.push(data.toString()),
    close: (code, reason) => void closes.push([code, reason]),
  }
  // Frames are written to the stream as they are; what a peer would read is the payload.
  const stream = {
    cork: () => void corks.push('cork'),
    uncork: () => void corks.push('uncork'),
    write: (frame: Buffer) => sent.push(payloadOf(frame).toString()) > 0,
  }
  return { socket, sent, closes, corks, stream }
}

const tick = () => new Promise((r) => setImmediate(r))
const frame = (s: string) => textFrame(s)

t.test('messages queued in one tick are written in one corked pass, in order', async (t) => {
  const { socket, sent, corks, stream } = fakeSocket()
  const outbox = new Outbox(socket, new Flusher(1024), stream)
  outbox.send(frame('a'))
  outbox.send(frame('b'))
  outbox.send(frame('c'))
  t.same(sent, [], 'nothing written synchronously')
  t.equal(outbox.unsentBytes, 9, 'three 1-byte messages, each behind its 2-byte frame header')
  await tick()
  t.same(sent, ['a', 'b', 'c'])
  t.same(corks, ['cork', 'uncork'], 'one write pass')
  t.equal(outbox.unsentBytes, 0)
})

t.test('a backlog past the limit cuts the socket: nothing more, then 4009 behind the queue', async (t) => {
  const { socket, sent, closes } = fakeSocket()
  const cut: Outbox[] = []
  const outbox = new Outbox(socket, new Flusher(10, (o) => cut.push(o)))
  t.ok(outbox.send(frame('12345')))
  socket.backlog = 11 // the kernel stopped taking data
  t.notOk(outbox.send(frame('x')), 'refused')
  t.notOk(outbox.send(frame('y')), 'still refused')
  t.ok(outbox.closing)
  t.equal(cut.length, 1, 'cut reported once')
  await tick()
  t.same(sent, ['12345'], 'what was queued still goes out')
  t.same(closes, [[4009, 'too slow to keep up: reconnect and resume']])
})

t.test('a write pass that leaves the backlog over the limit cuts the socket', async (t) => {
  const { socket, sent, closes } = fakeSocket()
  const outbox = new Outbox(socket, new Flusher(10))
  socket.send = (data) => {
    sent.push(data.toString())
    socket.backlog += data.length // nothing reaches the kernel
  }
  outbox.send(frame('0123456789'))
  outbox.send(frame('abc'))
  await tick()
  t.same(sent, ['0123456789', 'abc'])
  t.same(closes, [[4009, 'too slow to keep up: reconnect and resume']])
})

t.test('one message larger than the limit is accepted into an empty buffer', async (t) => {
  const { socket, sent, closes } = fakeSocket()
  const outbox = new Outbox(socket, new Flusher(4))
  t.ok(outbox.send(frame('a large snapshot')))
  await tick()
  t.same(sent, ['a large snapshot'])
  t.same(closes, [])
})

t.test('close is queued behind data and nothing is sent after it', async (t) => {
  const { socket, sent, closes } = fakeSocket()
  const outbox = new Outbox(socket, new Flusher(100))
  outbox.send(frame('last'))
  outbox.close(1012, 'restarting')
  t.notOk(outbox.send(frame('late')))
  await tick()
  t.same(sent, ['last'])
  t.same(closes, [[1012, 'restarting']])
})

t.test('a long write pass is sliced over turns of the event loop; every outbox still gets its queue once, in order', async (t) => {
  // sliceMs 0: each turn writes the outboxes up to the first clock check (31), the rest wait a turn.
  const flusher = new Flusher(1024, undefined, 0)
  const sockets = Array.from({ length: 100 }, () => fakeSocket())
  const outboxes = sockets.map((f) => new Outbox(f.socket, flusher, f.stream))
  outboxes.forEach((o, i) => {
    o.send(frame(`${i}a`))
    o.send(frame(`${i}b`))
  })
  const written = () => sockets.filter((f) => f.sent.length > 0).length
  await tick()
  t.equal(written(), 31, 'the first slice')
  // A message queued meanwhile to a socket not reached yet joins its pending queue.
  outboxes[99].send(frame('99c'))
  const turns: number[] = []
  while (written() < 100) {
    await tick()
    turns.push(written())
  }
  t.ok(turns.length >= 2, `the rest over ${turns.length} more turns`)
  t.same(sockets[0].sent, ['0a', '0b'])
  t.same(sockets[99].sent, ['99a', '99b', '99c'])
  t.ok(sockets.every((f, i) => f.sent.filter((m) => m.startsWith(`${i}`)).length === f.sent.length), 'each socket only its own messages')
  t.same(sockets.map((f) => f.sent.length), sockets.map((_, i) => (i === 99 ? 3 : 2)), 'each message once')
})

t.test('run() writes everything queued at once (shutdown)', async (t) => {
  const flusher = new Flusher(1024, undefined, 0)
  const sockets = Array.from({ length: 100 }, () => fakeSocket())
  sockets.forEach((f, i) => new Outbox(f.socket, flusher, f.stream).send(frame(`${i}`)))
  flusher.run()
  t.same(sockets.map((f) => f.sent), sockets.map((_, i) => [`${i}`]))
  await tick()
  t.same(sockets.map((f) => f.sent.length), sockets.map(() => 1), 'nothing written twice by the pending slice')
})

t.test('token bucket: burst, then the sustained rate', async (t) => {
  const bucket = new TokenBucket({ ratePerS: 10, burst: 3 }, 0)
  t.same([bucket.take(0), bucket.take(0), bucket.take(0), bucket.take(0)], [true, true, true, false])
  t.notOk(bucket.take(50), 'half a token after 50 ms')
  t.ok(bucket.take(100), 'one token after 100 ms')
  t.notOk(bucket.take(100))
  t.same([bucket.take(10_000), bucket.take(10_000), bucket.take(10_000), bucket.take(10_000)], [true, true, true, false], 'never more than the burst saved')
})
