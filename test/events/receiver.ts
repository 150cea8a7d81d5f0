/**
 * A real HTTP webhook receiver for tests: verifies every delivery with the
 * Standard Webhooks library, records what arrived, answers as told, and lets a
 * test wait for a condition on what arrived (no sleeps).
 */
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { Webhook } from 'standardwebhooks'
import type { Teardown } from '../helpers/teardown.js'

export interface Arrival {
  id: string
  type: string
  data: any
  headers: IncomingHttpHeaders
  /** Signature verified with the endpoint's secret. */
  verified: boolean
  at: number
}

export interface Receiver {
  url: string
  arrivals: Arrival[]
  /** Set once the endpoint is created: deliveries are verified with it. */
  secret: string
  /** How to answer one arrival (default 204); `'hang'` never answers. */
  answer: (a: Arrival, attempt: number) => number | 'hang'
  waitFor(check: (arrivals: Arrival[]) => boolean, what: string, timeoutMs?: number): Promise<void>
}

export async function startReceiver(t: Teardown): Promise<Receiver> {
  const sockets = new Set<Socket>()
  const waiters = new Set<() => void>()
  const attempts = new Map<string, number>()
  const hanging: ServerResponse[] = []
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8')
      let verified = false
      let parsed: any = {}
      try {
        parsed = new Webhook(receiver.secret).verify(body, req.headers as Record<string, string>)
        verified = true
      } catch {
        parsed = JSON.parse(body || '{}')
      }
      const id = String(req.headers['webhook-id'])
      const n = (attempts.get(id) ?? 0) + 1
      attempts.set(id, n)
      const arrival: Arrival = { id, type: parsed.type, data: parsed.data, headers: req.headers, verified, at: Date.now() }
      const answer = receiver.answer(arrival, n)
      receiver.arrivals.push(arrival)
      for (const w of [...waiters]) w()
      if (answer === 'hang') hanging.push(res)
      else res.writeHead(answer).end()
    })
  })
  server.on('connection', (s) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    for (const s of sockets) s.destroy()
    await new Promise((resolve) => server.close(resolve))
  })
  const receiver: Receiver = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    arrivals: [],
    secret: '',
    answer: () => 204,
    waitFor: (check, what, timeoutMs = 60_000) =>
      new Promise((resolve, reject) => {
        const test = () => {
          if (!check(receiver.arrivals)) return
          waiters.delete(test)
          clearTimeout(timer)
          resolve()
        }
        const timer = setTimeout(() => {
          waiters.delete(test)
          reject(new Error(`receiver: timed out waiting for ${what} (${receiver.arrivals.length} arrivals)`))
        }, timeoutMs)
        waiters.add(test)
        test()
      }),
  }
  return receiver
}
