/**
 * One HTTP POST of a webhook delivery: signed the Standard Webhooks way (the
 * `standardwebhooks` library), no redirect followed (a 3xx is a failure), bounded
 * in time, and refused when the target resolves to a private, loopback or
 * link-local address unless allowed (checked on the address actually connected to,
 * so a DNS answer that changes between check and connect cannot slip through).
 * Connections are kept alive in the dispatcher's agents: a reused socket was
 * checked when it connected and stays on that address. Deliveries to one endpoint
 * are pipelined on its connections (each (endpoint, task) run still sends one at a
 * time, so a task's events keep their order), and what is written to a connection in
 * one tick leaves in one write: a round that starts many runs costs a few syscalls,
 * not one per request.
 */
import { Agent, buildConnector } from 'undici'
import { BlockList, isIP, type Socket } from 'node:net'
import { lookup as dnsLookup, type LookupAddress } from 'node:dns'
import { createHmac, createSecretKey, type KeyObject } from 'node:crypto'
import { Webhook } from 'standardwebhooks'

const PRIVATE = new BlockList()
for (const [net, bits] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12],
  ['192.0.0.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['224.0.0.0', 4], ['240.0.0.0', 4],
] as const) PRIVATE.addSubnet(net, bits, 'ipv4')
for (const [net, bits] of [['::', 128], ['::1', 128], ['fc00::', 7], ['fe80::', 10], ['ff00::', 8]] as const) PRIVATE.addSubnet(net, bits, 'ipv6')

/** True for addresses a webhook may not reach unless WEBHOOK_ALLOW_PRIVATE=true. */
export function isPrivateAddress(address: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)
  if (mapped) return PRIVATE.check(mapped[1], 'ipv4')
  const family = isIP(address)
  if (family === 0) return true
  return PRIVATE.check(address, family === 4 ? 'ipv4' : 'ipv6')
}

/** Why a target URL may not be used (literal addresses and names only; DNS is checked at connect time), or null. */
export function refuseTarget(url: string, allowPrivate: boolean): string | null {
  let u: URL
  try {
    u = new URL(url)
  } catch {
    return 'url is not a valid URL'
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') return 'url must be http or https'
  if (u.username || u.password) return 'url must not carry credentials'
  if (allowPrivate) return null
  const host = u.hostname.replace(/^\[|\]$/g, '')
  if (host === 'localhost' || host.endsWith('.localhost') || (isIP(host) !== 0 && isPrivateAddress(host))) {
    return 'url points to a private or loopback address (set WEBHOOK_ALLOW_PRIVATE=true to allow)'
  }
  return null
}

export interface SendResult {
  ok: boolean
  status: number | null
  error: string | null
  latencyMs: number
}

export interface SendOptions {
  timeoutMs: number
  allowPrivate: boolean
  /** Names the sending instance in the user-agent (for operators reading a receiver's log). */
  instanceId: string
  /** Keep-alive agents (see `createAgents`); without them each delivery opens its own connection. */
  agents?: WebhookAgents
}

/**
 * The kept-alive connections of one dispatcher (undici: about half the CPU per request of
 * node:http's client, measured 46 → 23 µs on loopback). Two pools: one that refuses
 * private addresses at connect time, one for `WEBHOOK_ALLOW_PRIVATE=true`.
 */
export interface WebhookAgents {
  /** The pool for a request to `origin`: pipelined, unless the endpoint answered slowly of late. */
  pick(origin: string, allowPrivate: boolean): Agent
  /** What an attempt to `origin` took: an answer after `slowMs` or none at all turns its pipelining off for a while. */
  answered(origin: string, latencyMs: number, answered: boolean): void
  /** Closes every connection at once (in-flight requests fail). */
  destroy(): Promise<void>
  close(): Promise<void>
}

export interface PipeliningOptions {
  /** An answer slower than this (ms, from the request's start) turns the endpoint's pipelining off. */
  slowMs?: number
  /** For this long (ms) after its last slow answer or timeout. */
  calmMs?: number
}

/** An endpoint that answered after a second, or not at all, goes one request per connection for 5 minutes. */
export const SLOW_ANSWER_MS = 1000
export const SERIAL_FOR_MS = 5 * 60_000


/**
 * An idle socket is closed after 4 s, before the 5 s keep-alive of common servers
 * (Node's included) runs out on the other side, so a request rarely meets a socket
 * the receiver just closed. Redirects are never followed (undici's `request` follows
 * none), and the connection is checked on the address actually connected to.
 *
 * `pipelining` (WEBHOOK_PIPELINING): requests in flight on one connection to an
 * endpoint. Above 1, requests to one endpoint fill a connection before the next is
 * opened, so the runs a round starts together share a few connections and their
 * requests leave in a few writes (`coalesceWrites`). A receiver answers a connection's
 * requests in order: a slow answer delays the others of its endpoint on that
 * connection (never another endpoint's) and they share its 10 s, and a request cut off
 * by the timeout takes the connection down with it; undici sends the requests behind
 * it again on a new connection (same webhook-id: at least once). So pipelining is for
 * endpoints that answer fast: one whose answer took `slowMs` (1 s, counted from the
 * request's start, so time queued behind others counts) or that did not answer goes
 * one request per connection (a pool of its own, as with pipelining off) for `calmMs`
 * (5 min) after that, then back. Requests already queued on its pipelined connections
 * when it turned slow finish there (or time out, and are retried, the same webhook-id).
 */
export function createAgents(pipelining = 1, o: PipeliningOptions = {}): WebhookAgents {
  const slowMs = o.slowMs ?? SLOW_ANSWER_MS
  const calmMs = o.calmMs ?? SERIAL_FOR_MS
  const pools = (depth: number) => {
    const options = { keepAliveTimeout: 4000, keepAliveMaxTimeout: 4000, pipelining: depth }
    return {
      public: new Agent({ ...options, connect: coalescing(buildConnector({ lookup: publicLookup as never })) }),
      any: new Agent({ ...options, connect: coalescing(buildConnector({})) }),
    }
  }
  const serial = pools(1)
  const piped = pipelining > 1 ? pools(pipelining) : null
  const all = piped ? [serial.public, serial.any, piped.public, piped.any] : [serial.public, serial.any]
  /** Origins answering slowly: until when their requests go one per connection. */
  const slow = new Map<string, number>()
  return {
    pick(origin, allowPrivate) {
      let pool = serial
      if (piped) {
        const until = slow.get(origin)
        if (until === undefined) pool = piped
        else if (until <= Date.now()) {
          slow.delete(origin)
          pool = piped
        }
      }
      return allowPrivate ? pool.any : pool.public
    },
    answered(origin, latencyMs, answered) {
      if (!piped || (answered && latencyMs < slowMs)) return
      if (slow.size >= 10_000 && !slow.has(origin)) slow.clear()
      slow.set(origin, Date.now() + calmMs)
    },
    destroy: async () => void (await Promise.all(all.map((a) => a.destroy()))),
    close: async () => void (await Promise.all(all.map((a) => a.close()))),
  }
}

/** Keys by secret, decoded (and checked) by the `standardwebhooks` library once per endpoint, not per delivery. */
const keys = new Map<string, KeyObject>()
function signingKey(secret: string): KeyObject {
  let k = keys.get(secret)
  if (!k) {
    if (keys.size >= 1000) keys.clear()
    const w = new Webhook(secret) as unknown as { key: Uint8Array }
    k = createSecretKey(Buffer.from(w.key))
    keys.set(secret, k)
  }
  return k
}

/**
 * The Standard Webhooks signature (`v1,` + base64 HMAC-SHA256 of `id.timestamp.body`),
 * what `Webhook#sign` computes, with node:crypto's native HMAC instead of the
 * library's JavaScript SHA-256 (the test suite checks both agree).
 */
export function signWebhook(secret: string, msgId: string, at: Date, payload: string): string {
  return `v1,${createHmac('sha256', signingKey(secret)).update(`${msgId}.${Math.floor(at.getTime() / 1000)}.`).update(payload).digest('base64')}`
}

/** Targets by URL, checked and parsed once (the refusal, or the request options of a delivery to it). */
const targets = new Map<string, { refused: string | null; origin: string; path: string }>()
function target(url: string, allowPrivate: boolean) {
  const key = `${allowPrivate ? 1 : 0}${url}`
  let t = targets.get(key)
  if (!t) {
    if (targets.size >= 1000) targets.clear()
    const refused = refuseTarget(url, allowPrivate)
    const u = refused ? null : new URL(url)
    t = { refused, origin: u?.origin ?? '', path: u ? `${u.pathname}${u.search}` : '' }
    targets.set(key, t)
  }
  return t
}

/** A connector whose sockets coalesce the writes of a tick. */
function coalescing(connect: buildConnector.connector): buildConnector.connector {
  return (options, callback) =>
    connect(options, (...args) => {
      if (args[1]) coalesceWrites(args[1])
      callback(...args)
    })
}

/**
 * Writes made to the socket within one turn of the event loop leave together, in its
 * check phase (the socket is corked at the first one): the requests a round starts,
 * and the next ones of the runs whose answers came in the same turn, cost one
 * `writev` per connection, not one each. undici corks and uncorks around each
 * request it writes; the cork held here keeps those from flushing before then.
 */
function coalesceWrites(socket: Socket): void {
  const write = socket.write
  let corked = false
  const flush = () => {
    corked = false
    socket.uncork()
  }
  socket.write = function (this: Socket, ...args: Parameters<Socket['write']>) {
    if (!corked) {
      corked = true
      this.cork()
      setImmediate(flush)
    }
    return write.apply(this, args)
  } as Socket['write']
}

type LookupCallback = (err: Error | null, address: string | LookupAddress[], family?: number) => void
/** A DNS lookup refusing private addresses (checked on what is actually connected to). */
function publicLookup(hostname: string, options: object, cb: LookupCallback): void {
  dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
    if (err) return cb(err, [])
    const bad = addresses.find((a) => isPrivateAddress(a.address))
    if (bad) return cb(new Error(`${hostname} resolves to a private address ${bad.address}`), [])
    cb(null, addresses)
  })
}

/**
 * Signs and posts one delivery; never throws. A kept-alive socket that fails before
 * any answer (the receiver closed it meanwhile) is tried once more on a new one:
 * the receiver may see the delivery twice, with the same webhook-id (at least once).
 */
export async function sendWebhook(url: string, secret: string, msgId: string, payload: string, opts: SendOptions): Promise<SendResult> {
  const started = performance.now()
  const first = await postOnce(url, secret, msgId, payload, opts, started)
  if (!first.staleSocket) return first.result
  return (await postOnce(url, secret, msgId, payload, opts, started)).result
}

/** Headers of the request: the same for every delivery of an instance but the three Standard Webhooks ones. */
const userAgents = new Map<string, string>()
const userAgent = (instanceId: string) => {
  let ua = userAgents.get(instanceId)
  if (!ua) userAgents.set(instanceId, (ua = `tasksync-webhooks (${instanceId})`))
  return ua
}

/** The body of an answer is not used: at most this much of it is read (the connection stays usable), then the socket is dropped. */
const BODY_LIMIT = 65_536
/** Errors of a kept-alive socket the receiver closed meanwhile, before any answer. */
const STALE_SOCKET = new Set(['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE'])
const TIMEOUTS = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT'])

/**
 * One POST through undici's `dispatch` with a handler of its own: no response
 * stream, no promise per stage, no AbortSignal (a plain timer bounds the whole
 * attempt): a delivery is a status line and a discarded body.
 */
function postOnce(url: string, secret: string, msgId: string, payload: string, opts: SendOptions, started: number): Promise<{ result: SendResult; staleSocket: boolean }> {
  const done = (status: number | null, error: string | null, staleSocket = false) => ({
    result: {
      ok: status !== null && status >= 200 && status < 300,
      status,
      error: error ?? (status !== null && (status < 200 || status >= 300) ? `receiver answered ${status}` : null),
      latencyMs: Math.round(performance.now() - started),
    },
    staleSocket,
  })
  const t = target(url, opts.allowPrivate)
  if (t.refused) return Promise.resolve(done(null, t.refused))
  const now = new Date()
  const ownAgents = opts.agents ? null : createAgents()
  const agents = opts.agents ?? ownAgents!
  const timedOut = `no answer within ${opts.timeoutMs} ms`
  return new Promise((resolve) => {
    let status: number | null = null
    let bytes = 0
    let abort: ((err?: Error) => void) | null = null
    let settled = false
    const finish = (r: ReturnType<typeof done>) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      if (ownAgents) void ownAgents.close()
      else if (!r.staleSocket) agents.answered(t.origin, r.result.latencyMs, r.result.status !== null)
      resolve(r)
    }
    const timer = setTimeout(() => {
      finish(done(null, timedOut))
      abort?.(new Error(timedOut))
    }, opts.timeoutMs)
    try {
      agents.pick(t.origin, opts.allowPrivate).dispatch(
        {
          origin: t.origin,
          path: t.path,
          method: 'POST',
          // Pipelined (undici pipelines only requests it may send again): a delivery is at least once, same webhook-id.
          idempotent: true,
          headers: [
            'content-type', 'application/json',
            'user-agent', userAgent(opts.instanceId),
            'webhook-id', msgId,
            'webhook-timestamp', String(Math.floor(now.getTime() / 1000)),
            'webhook-signature', signWebhook(secret, msgId, now, payload),
          ],
          body: payload,
          headersTimeout: opts.timeoutMs,
          bodyTimeout: opts.timeoutMs,
        },
        {
          onConnect(a) {
            abort = a
            if (settled) a(new Error(timedOut))
          },
          onHeaders(statusCode) {
            status = statusCode
            return true
          },
          onData(chunk) {
            bytes += chunk.length
            if (bytes <= BODY_LIMIT) return true
            finish(done(status, null))
            abort?.(new Error('answer body over the limit'))
            return false
          },
          onComplete() {
            finish(done(status, null))
          },
          onError(err) {
            // An answer came (its body failed or was cut off): its status counts.
            if (status !== null) return finish(done(status, null))
            const e = err as Error & { code?: string }
            if (e.code && TIMEOUTS.has(e.code)) return finish(done(null, timedOut))
            finish(done(null, e.message || String(e), e.code !== undefined && STALE_SOCKET.has(e.code)))
          },
        },
      )
    } catch (err) {
      finish(done(null, (err as Error).message || String(err)))
    }
  })
}
