/**
 * Wakes dispatchers when a commit wrote events, instead of leaving them to their
 * next poll: this instance's at once (the commit is known here first), the other
 * instances through the bus channel `events:written`. Publications are throttled
 * to one per `gapMs` — a burst of commits costs one message, plus a trailing one
 * for the commits made after it — and the payload is the instance id, so an
 * instance skips its own echo. A lost message only costs a poll interval.
 */
import type { Bus } from '../bus/types.js'

export const DOORBELL_CHANNEL = 'events:written'

export class Doorbell {
  private lastPublish = 0
  private trailing: NodeJS.Timeout | undefined

  constructor(
    private readonly bus: Bus,
    private readonly instanceId: string,
    private readonly wakeLocal: () => void,
    private readonly gapMs: number,
    private readonly log: { warn(obj: object, msg: string): void },
  ) {}

  /** A commit on this instance wrote events (called after it committed). */
  ring(): void {
    this.wakeLocal()
    if (this.trailing) return
    const wait = this.lastPublish + this.gapMs - Date.now()
    if (wait <= 0) this.publish()
    else this.trailing = setTimeout(() => this.publish(), wait).unref()
  }

  /**
   * Wakes the other instances' dispatchers now, past the throttle: this instance just
   * fanned events out and leaves their deliveries to whichever dispatcher claims first.
   */
  ringOthers(): void {
    clearTimeout(this.trailing)
    this.publish()
  }

  /** Wakes this instance's dispatcher when another instance rings; resolves to the unsubscribe. */
  listen(): Promise<() => Promise<void>> {
    return this.bus.subscribe(DOORBELL_CHANNEL, (from) => {
      if (from !== this.instanceId) this.wakeLocal()
    })
  }

  close(): void {
    clearTimeout(this.trailing)
    this.trailing = undefined
  }

  private publish(): void {
    this.trailing = undefined
    this.lastPublish = Date.now()
    this.bus.publish(DOORBELL_CHANNEL, this.instanceId).catch((err) => this.log.warn({ err }, 'could not ring the other dispatchers; they find the events at their next poll'))
  }
}
