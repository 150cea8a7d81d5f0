/**
 * Wakes dispatchers when a commit wrote events, instead of leaving them to their
 * next poll: this instance's at once (the commit is known here first), the other
 * instances through the bus channel `events:written`. Publications are throttled
 * to one per `gapMs` — a burst of commits costs one message, plus a trailing one
 * for the commits made after it — and the payload is the instance id, so an
 * instance skips its own echo. A lost message only costs a poll interval.
 *
 * Running dispatchers also announce themselves on the channel every `presenceMs`
 * (`+` and the instance id: no wake), so each knows whether it has peers: one that
 * heard none for three announcements is alone and keeps what its fan-out wrote
 * instead of leaving it to the others' claims. A peer that starts meanwhile is heard
 * at once (it announces when it starts); until then it only gets a smaller share. A
 * dispatcher that just started counts as having peers until it has listened for three
 * periods itself: the others' next announcements may still be on their way, and taking a
 * burst alone when it is not would starve them of their share.
 */
import type { Bus } from '../bus/types.js'

export const DOORBELL_CHANNEL = 'events:written'
/** Marks a presence announcement on the channel (a ring is the bare instance id). */
const PRESENT = '+'

export class Doorbell {
  private lastPublish = 0
  private trailing: NodeJS.Timeout | undefined
  private presence: NodeJS.Timeout | undefined
  /** When this dispatcher started announcing (null: not announcing). */
  private announcingSince: number | null = null
  /** Other dispatchers, by instance id: when last heard. */
  private readonly peers = new Map<string, number>()

  constructor(
    private readonly bus: Bus,
    private readonly instanceId: string,
    private readonly wakeLocal: () => void,
    private readonly gapMs: number,
    private readonly log: { warn(obj: object, msg: string): void },
    private readonly presenceMs = 1000,
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
    return this.bus.subscribe(DOORBELL_CHANNEL, (payload) => {
      if (payload.startsWith(PRESENT)) {
        const from = payload.slice(PRESENT.length)
        if (from !== this.instanceId) this.peers.set(from, Date.now())
      } else if (payload !== this.instanceId) this.wakeLocal()
    })
  }

  /** Announces this instance's dispatcher now and every `presenceMs` until `close`. */
  announce(): void {
    clearInterval(this.presence)
    this.announcingSince ??= Date.now()
    const send = () =>
      this.bus.publish(DOORBELL_CHANNEL, `${PRESENT}${this.instanceId}`).catch((err) => this.log.warn({ err }, 'could not announce this dispatcher; the others leave it a smaller share'))
    send()
    this.presence = setInterval(send, this.presenceMs).unref()
  }

  /** Stops announcing (the dispatcher stopped). */
  silence(): void {
    clearInterval(this.presence)
    this.presence = undefined
    this.announcingSince = null
  }

  /**
   * True when no other dispatcher announced itself within three announcement periods,
   * and this one has been announcing (so listening) for at least that long.
   */
  alone(): boolean {
    const since = Date.now() - 3 * this.presenceMs
    if (this.announcingSince !== null && this.announcingSince > since) return false
    for (const [id, at] of this.peers) {
      if (at >= since) return false
      this.peers.delete(id)
    }
    return true
  }

  close(): void {
    clearTimeout(this.trailing)
    this.trailing = undefined
    this.silence()
  }

  private publish(): void {
    this.trailing = undefined
    this.lastPublish = Date.now()
    this.bus.publish(DOORBELL_CHANNEL, this.instanceId).catch((err) => this.log.warn({ err }, 'could not ring the other dispatchers; they find the events at their next poll'))
  }
}
