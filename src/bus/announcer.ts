/**
 * Tells the world about a commit: first this instance's listeners, synchronously
 * (the local gateway never waits on a Redis round trip), then the bus channel
 * `org:<orgId>`, which every instance, this one included, receives. A failed
 * publication does not undo the commit: it is logged, and subscribers repair the
 * gap from the op log.
 */
import type { Bus } from './types.js'
import { publishNotice, type OrgNotice } from './notices.js'

interface Logger {
  warn(obj: unknown, msg?: string): void
  error(obj: unknown, msg?: string): void
}

export class Announcer<N extends OrgNotice> {
  private readonly listeners = new Set<(notice: N) => void>()
  private readonly publishing = new Set<Promise<void>>()

  constructor(
    private readonly bus: Bus,
    readonly instanceId: string,
    private readonly logger?: Logger,
  ) {}

  listen(listener: (notice: N) => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  announce(notice: N): void {
    for (const listener of this.listeners) {
      try {
        listener(notice)
      } catch (err) {
        this.logger?.error({ err }, 'commit listener failed')
      }
    }
    // Not awaited: publications leave in commit order on the bus's one publish
    // connection, and the commit's ack must not wait for Redis.
    let p: Promise<void>
    try {
      p = publishNotice(this.bus, notice)
    } catch (err) {
      p = Promise.reject(err)
    }
    const tracked = p.catch((err) => this.logger?.warn({ err, orgId: notice.orgId }, 'publish failed; subscribers repair from the op log'))
    this.publishing.add(tracked)
    void tracked.finally(() => this.publishing.delete(tracked))
  }

  /** Resolves when every publication begun so far has settled. */
  async idle(): Promise<void> {
    while (this.publishing.size > 0) await Promise.all([...this.publishing])
  }
}
