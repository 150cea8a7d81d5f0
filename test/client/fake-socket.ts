/**
 * A scripted stand-in for the server side of one client's sockets: the test
 * opens them, reads what the client sent and answers by hand, in exactly the
 * order a tricky case needs. No network, no timers of its own.
 */
import type { WebSocketLike } from '../../src/client/index.js'
import type { ClientMessage, ServerMessage } from '../../src/protocol/messages.js'

export class FakeSocket implements WebSocketLike {
  readyState = 0
  readonly sent: ClientMessage[] = []
  onopen: ((ev: unknown) => void) | null = null
  onmessage: ((ev: { data: unknown }) => void) | null = null
  onclose: ((ev: { code: number; reason?: string }) => void) | null = null
  onerror: ((ev: unknown) => void) | null = null
  closedByClient: number | null = null

  constructor(readonly url: string) {}

  send(data: string): void {
    if (this.readyState !== 1) throw new Error('not open')
    this.sent.push(JSON.parse(data) as ClientMessage)
  }

  close(code = 1000): void {
    if (this.readyState === 3) return
    this.readyState = 3
    this.closedByClient = code
    this.onclose?.({ code })
  }

  // ---- driven by the test ----

  open(): void {
    this.readyState = 1
    this.onopen?.({})
  }

  receive(msg: ServerMessage | Record<string, unknown>): void {
    this.onmessage?.({ data: JSON.stringify(msg) })
  }

  /** The server (or the network) drops the connection. */
  drop(code = 1006): void {
    if (this.readyState === 3) return
    this.readyState = 3
    this.onclose?.({ code })
  }

  /** Removes and returns what the client sent, optionally only messages of one type. */
  take<T extends ClientMessage['type']>(type?: T): Extract<ClientMessage, { type: T }>[] {
    const out: ClientMessage[] = []
    for (let i = 0; i < this.sent.length; ) {
      if (!type || this.sent[i].type === type) out.push(this.sent.splice(i, 1)[0])
      else i++
    }
    return out as Extract<ClientMessage, { type: T }>[]
  }
}

/** A WebSocket class whose instances the test can reach. */
export function fakeWebSocket() {
  const sockets: FakeSocket[] = []
  class WS extends FakeSocket {
    constructor(url: string) {
      super(url)
      sockets.push(this)
    }
  }
  return { WebSocket: WS, sockets }
}

/** Polls `pred` until true (the client works through promise chains and timers). */
export async function waitFor<T>(pred: () => T | undefined | false | null, what = 'condition', ms = 3000): Promise<T> {
  const until = Date.now() + ms
  for (;;) {
    const v = pred()
    if (v) return v
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 2))
  }
}

/** Lets pending promise chains (storage writes) settle. */
export const settle = () => new Promise((r) => setTimeout(r, 10))

/** Waits for the next message of `type` the client sends on `sock`, and removes it. */
export function nextSent<T extends ClientMessage['type']>(sock: FakeSocket, type: T, ms = 3000): Promise<Extract<ClientMessage, { type: T }>> {
  return waitFor(() => sock.take(type)[0], `a ${type} message`, ms)
}
