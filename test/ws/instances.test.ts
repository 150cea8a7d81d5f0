/**
 * Real processes (src/server.ts) beside an in-process instance, sharing
 * PostgreSQL and Redis: SIGTERM drains (1012, begun commits acked, exit in
 * time); SIGKILL mid-stream loses nothing acked, and its clients resume on the
 * other instance with exactly the ops they missed.
 */
import t from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startTestApp, registerOwner, TEST_JWT_SECRET, type TestApp } from '../helpers/app.js'
import { TEST_REDIS_URL } from '../helpers/db.js'
import { TestSocket, until, type Msg } from './helpers.js'
import type { Teardown } from '../helpers/teardown.js'

/** Starts `src/server.ts` as a separate process of the same deployment as `peer`; resolves with its URL. */
async function spawnInstance(t: Teardown, peer: TestApp): Promise<{ child: ChildProcess; url: string; exited: Promise<number | null> }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'tasksync-child-'))
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    env: {
      ...process.env,
      NODE_ENV: 'test',
      HOST: '127.0.0.1',
      PORT: '0',
      DATABASE_URL: peer.databaseUrl,
      DATABASE_POOL_SIZE: '5',
      REDIS_URL: TEST_REDIS_URL,
      REDIS_PREFIX: peer.redisPrefix,
      JWT_SECRET: TEST_JWT_SECRET,
      DATA_DIR: dataDir,
      LOG_LEVEL: 'info',
      INSTANCE_ID: `child-${randomUUID().slice(0, 8)}`,
      SHUTDOWN_TIMEOUT_MS: '5000',
      WS_PROBE_MS: '200',
      HOUSEKEEPING_INTERVAL_S: '0',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    await exited
    rmSync(dataDir, { recursive: true, force: true })
  })
  const url = await new Promise<string>((resolve, reject) => {
    let out = ''
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString()
      const m = out.match(/listening at (http:\/\/127\.0\.0\.1:\d+)/)
      if (m) resolve(m[1])
    })
    child.stderr!.on('data', (chunk: Buffer) => (out += chunk.toString()))
    void exited.then(() => reject(new Error(`instance exited before listening:\n${out.slice(-2000)}`)))
  })
  return { child, url, exited }
}

const revsOf = (s: TestSocket, taskId: string) =>
  s.log.filter((m: Msg) => m.taskId === taskId && (m.type === 'op' || m.type === 'snapshot' || (m.type === 'ack' && !m.noop))).map((m) => m.rev as number)
const lastRev = (s: TestSocket, taskId: string) => Math.max(0, ...revsOf(s, taskId))

t.test('SIGTERM: begun commits acked, sockets closed with 1012, the process exits in time', async (t) => {
  const a = await startTestApp(t)
  const k = await spawnInstance(t, a)
  const owner = await registerOwner(a.url)
  const writer = await TestSocket.ready(k.url, owner.accessToken)
  const watcher = await TestSocket.ready(k.url, owner.accessToken)
  const taskId = randomUUID()
  await writer.request({ type: 'create', taskId, seq: 1, task: {} }, 'ack')
  await watcher.request({ type: 'subscribe', taskIds: [taskId] }, 'subscribed')
  for (let seq = 2; seq <= 21; seq++) writer.send({ type: 'op', taskId, baseRev: 1, seq, op: { title: [`${seq} `] } })
  await writer.next('ack', (m) => m.seq === 2)
  const started = Date.now()
  k.child.kill('SIGTERM')
  t.equal((await writer.closed).code, 1012)
  t.equal((await watcher.closed).code, 1012)
  const code = await k.exited
  t.ok(Date.now() - started < 10_000, `exited within the shutdown window (${Date.now() - started} ms)`)
  t.equal(code, 0)
  // Every op committed before the exit reached the writer as an ack.
  const logged = await a.app.sequencer.opsSince(owner.user.orgId, taskId, 2, 100)
  const acked = new Set(writer.all('ack').map((m) => m.seq))
  t.ok(logged.length > 0)
  for (const e of logged) t.ok(acked.has(e.seq), `committed seq ${e.seq} was acked`)
})

t.test('SIGKILL mid-stream: nothing acked is lost; its clients resume on the other instance exactly', async (t) => {
  const a = await startTestApp(t, { env: { WS_PROBE_MS: '200' } })
  const k = await spawnInstance(t, a)
  const owner = await registerOwner(a.url)
  const orgId = owner.user.orgId
  const taskId = randomUUID()
  const observer = await TestSocket.ready(a.url, owner.accessToken)
  await observer.request({ type: 'create', taskId, seq: 1, task: {} }, 'ack')
  await observer.request({ type: 'subscribe', taskIds: [taskId] }, 'subscribed')

  let writerOnK = await TestSocket.ready(k.url, owner.accessToken)
  let readerOnK = await TestSocket.ready(k.url, owner.accessToken)
  for (const s of [writerOnK, readerOnK]) await s.request({ type: 'subscribe', taskIds: [taskId] }, 'subscribed')
  const writerOnA = await TestSocket.ready(a.url, owner.accessToken)
  await writerOnA.request({ type: 'subscribe', taskIds: [taskId] }, 'subscribed')

  const acks: { clientId: string; seq: number; rev: number }[] = []
  let killed = false
  /** One op in flight at a time; on a dead socket, waits for the next socket and resends the same seq. */
  const writeLoop = async (get: () => TestSocket, n: number, startSeq: number) => {
    for (let seq = startSeq; seq < startSeq + n; seq++) {
      for (;;) {
        const s = get()
        const reply = s.nextWhere((m) => m.seq === seq && (m.type === 'ack' || m.type === 'error'), 5000).catch(() => null)
        s.send({ type: 'op', taskId, baseRev: lastRev(s, taskId), seq, op: { title: [`${seq} `] } })
        const m = await reply
        if (m?.type === 'ack') {
          acks.push({ clientId: s.clientId, seq, rev: m.rev })
          break
        }
        await until(() => get() !== s || !killed, 'a live socket', 20_000)
      }
    }
  }
  const loops = Promise.all([writeLoop(() => writerOnK, 40, 1), writeLoop(() => writerOnA, 40, 1)])

  await until(() => acks.filter((x) => x.clientId === writerOnK.clientId).length >= 10, 'ten acks through K')
  killed = true
  k.child.kill('SIGKILL')
  const [w, r] = await Promise.all([writerOnK.closed, readerOnK.closed])
  t.equal(w.code, 1006, 'abnormal closure: no close frame from a killed process')
  t.equal(r.code, 1006)

  // Both resume on A with the same clientIds and the last rev they had.
  const resume = async (old: TestSocket) => {
    const s = await TestSocket.ready(a.url, owner.accessToken, old.clientId)
    s.log.unshift(...old.log.filter((m) => m.taskId === taskId))
    await s.request({ type: 'subscribe', since: { [taskId]: lastRev(old, taskId) } }, 'subscribed')
    return s
  }
  ;[writerOnK, readerOnK] = [await resume(writerOnK), await resume(readerOnK)]
  killed = false
  await loops

  const final = (await a.app.sequencer.snapshot(orgId, taskId))!.rev
  await until(() => [observer, writerOnK, readerOnK, writerOnA].every((s) => lastRev(s, taskId) === final), 'everyone at the final rev')
  const log = await a.app.sequencer.opsSince(orgId, taskId, 1, 10_000)
  t.same(log.map((e) => e.rev), Array.from({ length: final }, (_, i) => i + 1), 'the log is gap-free')
  for (const ack of acks) {
    const entries = log.filter((e) => e.clientId === ack.clientId && e.seq === ack.seq)
    t.equal(entries.length, 1, `acked ${ack.clientId.slice(0, 8)}/${ack.seq} is in the log once`)
    t.equal(entries[0]?.rev, ack.rev, 'at its acked rev')
  }
  for (const s of [observer, readerOnK, writerOnA]) {
    // Ops seen (and the snapshot it started from): every rev once, in order, across the reconnect.
    const ops = s.log.filter((m) => m.taskId === taskId && m.type === 'op').map((m) => m.rev as number)
    const start = s.log.find((m) => m.taskId === taskId && m.type === 'snapshot')!.rev as number
    const own = s.log.filter((m) => m.taskId === taskId && m.type === 'ack' && !m.noop && m.rev > start).map((m) => m.rev as number)
    t.same([...new Set(ops)].length, ops.length, 'no op twice')
    t.same([...ops, ...own].sort((x, y) => x - y), Array.from({ length: final - start }, (_, i) => start + i + 1), 'no gap')
    t.same(ops, [...ops].sort((x, y) => x - y), 'in rev order')
  }
  for (const s of [observer, writerOnK, readerOnK, writerOnA]) s.close()
})
