/**
 * Fan-out between instances. The in-process implementation serves the embedded
 * single-instance mode; the Redis one uses separate publish and subscribe
 * connections. Handlers must never block: they get the raw payload and return.
 */
export type BusHandler = (payload: string, channel: string) => void

export interface Bus {
  /** This instance's id: published messages carry it so an instance can skip its own echoes. */
  readonly instanceId: string
  readonly kind: 'memory' | 'redis'
  publish(channel: string, payload: string): Promise<void>
  /** Subscribes; the returned function unsubscribes this handler. */
  subscribe(channel: string, handler: BusHandler): Promise<() => Promise<void>>
  /** 'up' when both connections are ready. */
  status(): 'up' | 'down'
  /** Short-lived shared key/value (presence). */
  setEphemeral(key: string, value: string, ttlMs: number): Promise<void>
  deleteEphemeral(key: string): Promise<void>
  /** Reads a value set with setEphemeral; null when absent or expired. */
  getEphemeral?(key: string): Promise<string | null>
  close(): Promise<void>
}
