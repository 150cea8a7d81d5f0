/** The presences one instance currently shows for one organization, with their last refresh. */
import type { PresenceNotice } from '../bus/notices.js'

interface Seen {
  notice: PresenceNotice
  at: number
}

export class PresenceBoard {
  private readonly seen = new Map<string, Seen>()

  /** Records a presence (or its clearing); false when it changes nothing worth relaying. */
  record(notice: PresenceNotice, now: number): boolean {
    const key = `${notice.taskId}|${notice.clientId}`
    if (notice.state === null) return this.seen.delete(key) || true
    this.seen.set(key, { notice, at: now })
    return true
  }

  /** Presences not refreshed within `ttlMs`, removed and returned as their clearing. */
  expire(now: number, ttlMs: number): PresenceNotice[] {
    const out: PresenceNotice[] = []
    for (const [key, s] of this.seen) {
      if (now - s.at > ttlMs) {
        this.seen.delete(key)
        out.push({ ...s.notice, state: null })
      }
    }
    return out
  }

  get size(): number {
    return this.seen.size
  }
}
