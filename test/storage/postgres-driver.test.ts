/**
 * The patched postgres.js (scripts/patch-postgres.mjs) survives a connection
 * that dies while it fetches array types right after connecting (PostgreSQL
 * shutting down): that fetch is an async function nobody awaits, and its
 * rejection went unhandled, which closes the whole process. The chaos checker
 * saw every instance exit this way on PostgreSQL restarts (CONNECTION_DESTROYED
 * or CONNECTION_BREAKER_OPEN as the fatal error).
 */
import t from 'tap'
import { createServer, type Socket } from 'node:net'
import postgres from 'postgres'
import type { Teardown } from '../helpers/teardown.js'

/** Answers the startup (AuthenticationOk, ReadyForQuery), then drops the connection at the first query. */
async function dyingServer(t: Teardown): Promise<{ port: number; connections: () => number }> {
  let connections = 0
  const sockets = new Set<Socket>()
  const srv = createServer((sock) => {
    connections++
    sockets.add(sock)
    sock.on('error', () => {})
    sock.once('data', () => {
      sock.write(Buffer.from([0x52, 0, 0, 0, 8, 0, 0, 0, 0]))
      sock.write(Buffer.from([0x5a, 0, 0, 0, 5, 0x49]))
      sock.once('data', () => sock.destroy())
    })
  })
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r))
  t.teardown(() => {
    for (const s of sockets) s.destroy()
    return new Promise((r) => srv.close(r))
  })
  return { port: (srv.address() as { port: number }).port, connections: () => connections }
}

t.test('a connection lost during the array-type fetch: the query fails or retries, nothing unhandled', async (t) => {
  const server = await dyingServer(t)
  const sql = postgres({ host: '127.0.0.1', port: server.port, username: 'x', database: 'x', max: 1, onnotice: () => {}, connect_timeout: 2 })
  const query = sql`select 1`.then(
    () => 'answered',
    (err: { code?: string }) => err.code,
  )
  // The type fetch dies with the connection; the query is retried on a new one (which dies the same way).
  while (server.connections() < 3) await new Promise((r) => setTimeout(r, 20))
  await sql.end({ timeout: 0 })
  t.match(await query, /^CONNECTION_/, 'the query is answered with a connection error')
  // Give a leaked rejection the turns it needs to surface (tap fails the test on one).
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r))
})
