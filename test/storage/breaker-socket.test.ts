/**
 * The breaker's sockets never throw from an `error` event nobody listens to:
 * postgres.js drops every listener of a socket when it closes, and the refused
 * socket of an open breaker fails on the next tick after its first write. An
 * error emitted without a listener is an uncaught exception: the whole
 * instance closes (the chaos checker saw instances exit on PostgreSQL restarts
 * with the breaker's error as the fatal one).
 */
import t from 'tap'
import { createServer } from 'node:net'
import { ConnectionBreaker } from '../../src/storage/breaker.js'

/** A port nothing listens on (taken, then released). */
async function closedPort(): Promise<number> {
  const srv = createServer()
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r))
  const port = (srv.address() as { port: number }).port
  await new Promise((r) => srv.close(r))
  return port
}

const ticks = async (n: number) => {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r))
}

t.test('an open breaker: a refused socket whose listeners are gone fails quietly', async (t) => {
  const port = await closedPort()
  const breaker = new ConnectionBreaker({ host: '127.0.0.1', port, connectTimeoutMs: 500, probeMs: 1000, probe: () => Promise.reject(new Error('still down')) })
  t.teardown(() => breaker.stop())
  // A watched connection that fails before the server's first byte opens the breaker.
  const first = breaker.rawSocket(true)
  await new Promise((r) => first.once('close', r))
  t.ok(breaker.isOpen, 'open after a refused connection')
  const s = breaker.socket()
  let seen: Error | null = null
  s.on('error', (err) => (seen = err))
  s.write(Buffer.from('startup'))
  await ticks(3)
  t.match(seen, { code: 'CONNECTION_BREAKER_OPEN' }, 'a listener gets the failure')
  // Listeners dropped before the deferred failure (postgres.js on close): nothing may be thrown.
  const orphan = breaker.socket()
  orphan.removeAllListeners()
  orphan.write(Buffer.from('startup'))
  await ticks(3)
  t.ok(orphan.destroyed, 'destroyed, without an uncaught exception')
})

t.test('a raw socket whose listeners are gone: a late error is not thrown', async (t) => {
  const port = await closedPort()
  const breaker = new ConnectionBreaker({ host: '127.0.0.1', port, connectTimeoutMs: 500, probeMs: 1000, probe: () => Promise.reject(new Error('still down')) })
  t.teardown(() => breaker.stop())
  const s = breaker.rawSocket()
  s.removeAllListeners()
  // Refused (ECONNREFUSED) with no one listening any more.
  await new Promise((r) => setTimeout(r, 200))
  t.ok(s.destroyed, 'closed, without an uncaught exception')
})
