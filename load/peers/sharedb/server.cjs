/**
 * The ShareDB peer of the load harness: ShareDB 7 with sharedb-postgres and
 * sharedb-redis-pubsub behind a `ws` server, configured like tasksync's
 * instance (one process, a PostgreSQL pool of DATABASE_POOL_SIZE, pub/sub on
 * Redis under its own prefix). Started by load/run.ts with `--peer sharedb`;
 * prints "listening <port>" once it accepts sockets.
 */
'use strict'
const http = require('node:http')
const { WebSocketServer } = require('ws')
const ShareDB = require('sharedb')
const PostgresDB = require('sharedb-postgres')
const RedisPubSub = require('sharedb-redis-pubsub')
const WebSocketJSONStream = require('@teamwork/websocket-json-stream')

const db = PostgresDB({ connectionString: process.env.DATABASE_URL, max: Number(process.env.DATABASE_POOL_SIZE || 10) })
const pubsub = RedisPubSub({ url: process.env.REDIS_URL, prefix: process.env.REDIS_PREFIX })
const backend = new ShareDB({ db, pubsub })

const server = http.createServer((req, res) => {
  res.writeHead(req.url === '/health' ? 200 : 404, { 'content-type': 'text/plain' })
  res.end(req.url === '/health' ? 'ok' : 'not found')
})
const wss = new WebSocketServer({ server, perMessageDeflate: false })
wss.on('connection', (ws) => backend.listen(new WebSocketJSONStream(ws)))
server.listen(Number(process.env.PORT || 0), '127.0.0.1', () => {
  console.log(`listening ${server.address().port}`)
})
const stop = () => {
  server.close()
  for (const ws of wss.clients) ws.terminate()
  backend.close(() => process.exit(0))
  setTimeout(() => process.exit(0), 2000).unref()
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
