/**
 * Reconnect backoff: the pure rule (property tests), and against a real server an
 * SDK client whose instance is gone (connection refused, many times) reconnecting
 * within the short cap once an address answers, instead of after a ceiling grown
 * by every refusal; and no token refresh for each refused attempt.
 */
import t from 'tap'
import fc from 'fast-check'
import net from 'node:net'
import WebSocket from 'ws'
import { Backoff, backoffCeiling } from '../../src/client/backoff.js'
import { TaskSyncClient, memoryStorage, type WebSocketConstructor } from '../../src/client/index.js'
import { registerOwner, startTestApp } from '../helpers/app.js'

const opts = fc.record({
  baseMs: fc.integer({ min: 1, max: 5000 }),
  maxMs: fc.integer({ min: 1, max: 120_000 }),
  unansweredMaxMs: fc.integer({ min: 1, max: 60_000 }),
})
const failure = fc.constantFrom('answered' as const, 'unanswered' as const)

t.test('the ceiling: never above the cap of its kind of failure, never below the first ceiling (capped), growing with attempts', async (t) => {
  fc.assert(
    fc.property(opts, fc.integer({ min: 0, max: 200 }), failure, (o, attempt, f) => {
      const c = backoffCeiling(attempt, f, o)
      const cap = f === 'unanswered' ? Math.min(o.unansweredMaxMs, o.maxMs) : o.maxMs
      return c <= cap && c >= Math.min(o.baseMs, cap) && backoffCeiling(attempt + 1, f, o) >= c
    }),
  )
  t.pass('held for every generated case')
})

t.test('unanswered failures stay within the short cap forever; answered ones reach the long one', async (t) => {
  fc.assert(
    fc.property(opts, fc.array(failure, { minLength: 1, maxLength: 80 }), fc.double({ min: 0, max: 0.999999, noNaN: true }), (o, failures, r) => {
      const b = new Backoff(o, () => r)
      for (const f of failures) {
        const d = b.next(f)
        const cap = f === 'unanswered' ? Math.min(o.unansweredMaxMs, o.maxMs) : o.maxMs
        if (d < 0 || d > cap || !Number.isInteger(d)) return false
      }
      return true
    }),
  )
  const b = new Backoff({ baseMs: 500 }, () => 0.999999)
  const answered = Array.from({ length: 10 }, () => b.next('answered'))
  t.equal(answered.at(-1), 29_999, 'answered: up to 30 s by default')
  const u = new Backoff({ baseMs: 500 }, () => 0.999999)
  const unanswered = Array.from({ length: 50 }, () => u.next('unanswered'))
  t.equal(Math.max(...unanswered), 3_999, 'unanswered: at most 4 s by default, however many')
  t.same(unanswered.slice(0, 4), [499, 999, 1999, 3999], 'growing from the first ceiling')
})

t.test('escalate and reset', async (t) => {
  fc.assert(
    fc.property(opts, fc.integer({ min: 0, max: 20 }), fc.integer({ min: 0, max: 10 }), (o, before, steps) => {
      const b = new Backoff(o, () => 0.999999)
      for (let i = 0; i < before; i++) b.next('answered')
      b.escalate(steps)
      const escalated = b.next('answered')
      b.reset()
      const first = b.next('answered')
      const r = 0.999999
      return escalated === Math.floor(r * backoffCeiling(before + steps, 'answered', { ...o })) && first === Math.floor(r * Math.min(o.baseMs, o.maxMs))
    }),
  )
  t.pass('held for every generated case')
})

t.test('an instance gone (refused many times): back within the short cap once an address answers, without a token per refusal', async (t) => {
  const app = await startTestApp(t)
  const owner = await registerOwner(app.url)
  // A port with nothing listening: connection refused at once.
  const dead = await new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port
      s.close(() => resolve(port))
    })
  })
  const live = new URL(app.url).port
  let target = live
  const attempts: number[] = []
  class Routed extends (WebSocket as unknown as new (url: string) => WebSocket) {
    constructor(url: string) {
      attempts.push(Date.now())
      super(url.replace(`:${live}/`, `:${target}/`))
    }
  }
  let tokens = 0
  const client = new TaskSyncClient({
    url: app.url,
    getAccessToken: async () => {
      tokens++
      return owner.accessToken
    },
    WebSocket: Routed as unknown as WebSocketConstructor,
    storage: memoryStorage(),
    // A first ceiling of 20 ms and the default long cap: ten refusals would grow it to 20 s.
    backoff: { baseMs: 20, unansweredMaxMs: 300 },
  })
  t.teardown(() => client.close())
  await client.connect()
  const online = () => new Promise<void>((resolve) => {
    if (client.status === 'online') return resolve()
    const off = client.on('status', (s) => {
      if (s !== 'online') return
      off()
      resolve()
    })
  })
  await online()
  const tokensBefore = tokens

  // The instance goes away: every attempt is refused.
  target = String(dead)
  const before = attempts.length
  ;(client as unknown as { conn: { reconnect(reason: string): void } }).conn.reconnect('instance lost')
  while (attempts.length < before + 12) await new Promise((r) => setTimeout(r, 20))
  const gaps = attempts.slice(before + 1).map((a, i) => a - attempts[before + i])
  t.ok(Math.max(...gaps) < 300 + 250, `refused attempts stay within the short cap: gaps ${gaps.join(', ')} ms`)
  t.ok(tokens - tokensBefore <= 1 + Math.ceil(12 / 3), `no new token per refused attempt (${tokens - tokensBefore} for 12 attempts)`)

  // Another address answers: back within the cap (plus the handshake), not after a ceiling grown by the refusals.
  const answeredAt = Date.now()
  target = live
  await online()
  const back = Date.now() - answeredAt
  t.ok(back < 300 + 2000, `online ${back} ms after an address answered again`)
})
