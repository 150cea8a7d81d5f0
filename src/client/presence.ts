/**
 * One task's presence: this client's own state (sent at most once per
 * PRESENCE_MS, the latest winning, and again after a reconnect) and the other
 * clients' states, forgotten when the connection drops.
 */
import type { PresenceEvent } from './types.js'

/** Smallest gap between two presence messages of one task (ms): far below the socket's rate limit. */
const PRESENCE_MS = 100

export class TaskPresence {
  /** Other clients' states, by clientId. */
  readonly others = new Map<string, { userId: string; state: Record<string, unknown> }>()
  private state: Record<string, unknown> | null = null
  private sentState: Record<string, unknown> | null = null
  private timer: ReturnType<typeof setTimeout> | null = null

  constructor(
    /** Sends the state if the task is subscribed; false otherwise. */
    private readonly send: (state: Record<string, unknown> | null) => boolean,
    private readonly emit: (e: PresenceEvent) => void,
  ) {}

  /** This client's new state (null: gone). */
  set(state: Record<string, unknown> | null): void {
    this.state = state
    if (this.timer) return
    this.push()
    this.timer = setTimeout(() => {
      this.timer = null
      if (this.sentState !== this.state) this.push()
    }, PRESENCE_MS)
  }

  /** After a (re)subscription: the server forgot this client's state. */
  resend(): void {
    if (this.state) this.push()
  }

  /** Another client's state. */
  received(clientId: string, userId: string, state: Record<string, unknown> | null): void {
    if (state) this.others.set(clientId, { userId, state })
    else this.others.delete(clientId)
    this.emit({ clientId, userId, state })
  }

  /** The connection dropped: the others' states are unknown from now on. */
  clear(): void {
    for (const [clientId, p] of this.others) this.emit({ clientId, userId: p.userId, state: null })
    this.others.clear()
  }

  private push(): void {
    if (this.send(this.state)) this.sentState = this.state
  }
}
