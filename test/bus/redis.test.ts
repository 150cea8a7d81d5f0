import t from 'tap'
import { createServer, connect, type Server, type Socket } from 'node:net'
import { Redis } from 'ioredis'
import fc from 'fast-check'
import { RedisBus, fromSelf, packPayloads, unpackPayloads } from '../../src/bus/redis.js'
import { TEST_REDIS_URL, testRedisPrefix } from '../helpers/db.js'
import { busContract, collector } from './contract.js'
import type { Teardown } from '../helpers/teardown.js'

const open = async (t: Teardown, prefix: string, id: string, url = TEST_REDIS_URL) => {
  const bus = await RedisBus.connect({ url, prefix, instanceId: id })
  t.teardown(() => bus.close())
  return bus
}

busContract(t, async (t) => {
  const prefix = testRedisPrefix()
  return { a: await open(t, prefix, 'a'), b: await open(t, prefix, 'b') }
})

t.test('REDIS_PREFIX isolates deployments', async (t) => {
  const mine = testRedisPrefix()
  const a = await open(t, mine, 'a')
  const stranger = await open(t, testRedisPrefix(), 's')
  const seen = collector()
  await stranger.subscribe('org:1', seen.handler)
  const raw = new Redis(TEST_REDIS_URL)
  t.teardown(() => raw.quit())
  const rawGot: string[] = []
  raw.on('message', (channel: string) => rawGot.push(channel))
  await raw.subscribe(mine + 'org:1', 'org:1')
  await a.publish('org:1', 'private')
  // Redis runs commands one at a time: the marker is delivered after anything `a` published before it.
  await stranger.publish('org:1', 'marker')
  t.same((await seen.until(1)).map((m) => m.payload), ['marker'], 'another prefix hears nothing')
  while (rawGot.length < 1) await new Promise((r) => setImmediate(r))
  t.same(rawGot, [mine + 'org:1'], 'the publication went out under the prefix, never bare')
})

t.test('start-up fails with a clear message when Redis is unreachable', async (t) => {
  const started = Date.now()
  await t.rejects(RedisBus.connect({ url: 'redis://127.0.0.1:1', prefix: 'x:', instanceId: 'x', connectTimeoutMs: 1500 }), {
    message: /cannot connect to Redis at redis:\/\/127\.0\.0\.1:1/,
  })
  t.ok(Date.now() - started < 10_000, 'within its timeout')
})

/** A TCP relay in front of Redis that the test can cut and restore, to simulate an outage. */
async function relay(target: URL): Promise<{ url: string; cut(): Promise<void>; restore(): Promise<void>; close(): Promise<void> }> {
  const sockets = new Set<Socket>()
  let server: Server | undefined
  let port = 0
  const listen = () =>
    new Promise<void>((resolve) => {
      server = createServer((client) => {
        const upstream = connect(Number(target.port || 6379), target.hostname)
        for (const s of [client, upstream]) {
          sockets.add(s)
          s.on('close', () => sockets.delete(s))
          s.on('error', () => s.destroy())
        }
        client.pipe(upstream).pipe(client)
      })
      server.listen(port, '127.0.0.1', () => {
        port = (server!.address() as { port: number }).port
        resolve()
      })
    })
  const cut = async () => {
    await new Promise<void>((resolve) => {
      server!.close(() => resolve())
      for (const s of sockets) s.destroy()
    })
  }
  await listen()
  return { url: `redis://127.0.0.1:${port}`, cut, restore: listen, close: cut }
}

async function waitFor(check: () => boolean, ms = 10_000): Promise<boolean> {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) return false
    await new Promise((r) => setTimeout(r, 50))
  }
  return true
}

t.test('an outage: publish rejects at once, then the bus reconnects and restores its subscriptions', async (t) => {
  const prefix = testRedisPrefix()
  const proxy = await relay(new URL(TEST_REDIS_URL))
  const bus = await open(t, prefix, 'through-proxy', proxy.url)
  const direct = await open(t, prefix, 'direct')
  const c = collector()
  await bus.subscribe('org:9', c.handler)
  await direct.publish('org:9', 'before')
  await c.until(1)

  await proxy.cut()
  t.ok(await waitFor(() => bus.status() === 'down'), 'status goes down')
  const started = Date.now()
  await t.rejects(bus.publish('org:9', 'lost'), 'a publish during the outage rejects (the caller answers unavailable)')
  t.ok(Date.now() - started < 3000, 'and does not hang')
  const both = await Promise.allSettled([bus.publish('org:9', 'lost'), bus.publish('org:10', 'lost')])
  t.same(
    both.map((r) => r.status),
    ['rejected', 'rejected'],
    'a tick of publications to several channels (one pipeline) rejects each of them',
  )

  await proxy.restore()
  t.teardown(() => proxy.close())
  t.ok(await waitFor(() => bus.status() === 'up'), 'reconnects by itself')
  // The resubscription is sent right after 'ready'; publish until it lands.
  t.ok(
    await waitFor(() => {
      void direct.publish('org:9', 'after')
      return c.got.some((m) => m.payload === 'after')
    }),
    'subscriptions are restored',
  )
  await bus.publish('org:9', 'from the restored bus')
  const mine = collector()
  await direct.subscribe('org:10', mine.handler)
  await bus.publish('org:10', 'ok')
  t.same((await mine.until(1)).map((m) => m.payload), ['ok'], 'and it publishes again')
})

t.test('publications of one tick to a channel leave as one Redis message and arrive one by one, in order', async (t) => {
  const prefix = testRedisPrefix()
  const a = await open(t, prefix, 'a')
  const b = await open(t, prefix, 'b')
  const onB = collector()
  await b.subscribe('org:1', onB.handler)
  const raw = new Redis(TEST_REDIS_URL)
  t.teardown(() => raw.quit())
  const rawMessages: string[] = []
  raw.on('message', (_c: string, m: string) => rawMessages.push(m))
  await raw.subscribe(prefix + 'org:1')
  const payloads = ['{"n":1}', '\u0000starts with the marker', '12:not a length', '{"n":4}', '']
  await Promise.all(payloads.map((p) => a.publish('org:1', p)))
  t.same((await onB.until(payloads.length)).map((m) => m.payload), payloads, 'each payload delivered once, in order')
  t.equal(rawMessages.length, 1, 'one PUBLISH for the tick')
  await a.publish('org:1', '{"alone":true}')
  await onB.until(payloads.length + 1)
  // The raw subscriber is another connection: its copy may land after the bus's.
  t.ok(await waitFor(() => rawMessages.length === 2), 'one more PUBLISH')
  t.equal(rawMessages[1], '{"alone":true}', 'a lone payload goes as it is')
})

t.test('packPayloads / unpackPayloads round-trip any strings', async (t) => {
  fc.assert(
    fc.property(fc.array(fc.string({ unit: 'binary' }), { minLength: 1, maxLength: 8 }), (payloads) => {
      const back = unpackPayloads(packPayloads(payloads))
      return back.length === payloads.length && back.every((p, i) => p === payloads[i])
    }),
    { numRuns: 500 },
  )
  t.pass('500 random batches round-tripped')
  t.same(unpackPayloads('\u00003:abc9:short'), ['abc'], 'a truncated tail is dropped, not mis-split')
})

t.test("skipOwnNotices: this instance's own notices are dropped from their first bytes, others' and other payloads delivered", async (t) => {
  const prefix = testRedisPrefix()
  const a = await open(t, prefix, 'inst-a')
  const b = await open(t, prefix, 'inst-b')
  const skipping = collector()
  const all = collector()
  await a.subscribe('org:1', skipping.handler, { skipOwnNotices: true })
  await a.subscribe('org:1', all.handler)
  const mine = ['{"kind":"op","from":"inst-a","n":1}', '{"kind":"presence","from":"inst-a","n":2}']
  await Promise.all(mine.map((p) => a.publish('org:1', p)))
  await a.publish('org:1', '{"kind":"op","from":"inst-a","alone":true}')
  const theirs = '{"kind":"op","from":"inst-b","n":3}'
  await b.publish('org:1', theirs)
  // Other payloads of this instance (not a notice, or another `from`) still arrive.
  const others = ['not json', '{"kind":"op","from":"inst-ab","n":4}']
  await Promise.all(others.map((p) => a.publish('org:1', p)))
  await all.until(6)
  t.same(
    all.got.map((m) => m.payload),
    [...mine, '{"kind":"op","from":"inst-a","alone":true}', theirs, ...others],
    'a subscription without the option gets everything, in order',
  )
  t.same(skipping.got.map((m) => m.payload), [theirs, ...others], 'the skipping one gets only what is not its own notice')
})

t.test('fromSelf reads single and packed messages', async (t) => {
  const marker = Buffer.from('","from":"me",')
  const one = (s: string) => fromSelf(Buffer.from(s), marker)
  t.ok(one('{"kind":"op","from":"me","x":1}'))
  t.ok(one(packPayloads(['{"kind":"attachment","from":"me","x":1}', '{"kind":"op","from":"me"}'])))
  t.notOk(one('{"kind":"op","from":"meme","x":1}'), 'another id that starts with this one')
  t.notOk(one('{"kind":"op","from":"other","x":1}'))
  t.notOk(one('{"from":"me","kind":"op"}'), 'keys in another order: left to the handler')
  t.notOk(one(packPayloads(['\u0000{"kind":"op","from":"me"}'])), 'a payload that starts with the pack marker')
  t.notOk(one(''), 'empty')
  t.notOk(one('{"kind":"'), 'shorter than the kind key and marker')
  t.notOk(one('{"kind":"op","from":"me"'), 'cut inside the marker')
  t.notOk(one('x'), 'shorter than the kind key')
  t.notOk(one('\u0000:{"kind":"op","from":"me",}'), 'a packed message without a length')
})

t.test('publications of one tick to several channels leave in one pipeline and each arrives on its channel, in order', async (t) => {
  const prefix = testRedisPrefix()
  const a = await open(t, prefix, 'a')
  const b = await open(t, prefix, 'b')
  const one = collector()
  const two = collector()
  await b.subscribe('org:1', one.handler)
  await b.subscribe('org:2', two.handler)
  await Promise.all([a.publish('org:1', 'x1'), a.publish('org:2', 'y1'), a.publish('org:1', 'x2'), a.publish('org:2', 'y2')])
  t.same((await one.until(2)).map((m) => [m.channel, m.payload]), [['org:1', 'x1'], ['org:1', 'x2']])
  t.same((await two.until(2)).map((m) => [m.channel, m.payload]), [['org:2', 'y1'], ['org:2', 'y2']])
  await a.close()
  const late = await Promise.allSettled([a.publish('org:1', 'late'), a.publish('org:2', 'late')])
  t.same(
    late.map((r) => r.status),
    ['rejected', 'rejected'],
    'a closed bus refuses at once',
  )
})
