/**
 * Fan-out between instances. The in-process implementation serves the embedded
 * single-instance mode; the Redis one uses separate publish and subscribe
 * connections. Handlers must never block: they get the raw payload and return.
 */
/** A publish or subscribe the bus could not carry out (disconnected, closed, timed out): retry later. */
export class BusUnavailableError extends Error {
  constructor(reason: string, options?: { cause?: unknown }) {
    super(`the bus is unavailable (${reason}); nothing was shared, retry`, options)
    this.name = 'BusUnavailableError'
  }
}

export type BusHandler = (payload: string, channel: string) => void

export interface SubscribeOptions {
  /**
   * A hint that the handler drops this instance's own notices (payloads that
   * start `{"kind":"…","from":"<instanceId>",`, as bus/notices.ts writes them): a bus
   * may then skip them before decoding. The handler must still tolerate them.
   */
  skipOwnNotices?: boolean
}

export interface Bus {
  /** This instance's id: published messages carry it so an instance can skip its own echoes. */
  readonly instanceId: string
  readonly kind: 'memory' | 'redis'
  /** Rejects with BusUnavailableError when the payload could not be sent. */
  publish(channel: string, payload: string): Promise<void>
  /** Subscribes; the returned function unsubscribes this handler. Rejects with BusUnavailableError on a closed bus. */
  subscribe(channel: string, handler: BusHandler, opts?: SubscribeOptions): Promise<() => Promise<void>>
  /** 'up' when both connections are ready. */
  status(): 'up' | 'down'
  close(): Promise<void>
}
