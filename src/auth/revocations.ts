/**
 * Whether a token's identity is still live: its device exists in its organization,
 * is not revoked, and belongs to its user, who has not been removed. A signature
 * only proves the token was issued; this proves what it names still holds together.
 * Every verification asks, so answers are cached briefly per device: a revocation or
 * a removal made on any instance takes effect everywhere within CACHE_MS, and at
 * once on instances that hear of it on the bus.
 */
import type { Executor } from '../storage/db.js'
import { activeDeviceOwner } from '../storage/principals.js'

const CACHE_MS = 1000
const MAX_ENTRIES = 50_000

export class DeviceRevocations {
  /** `org/device` → the device's user while both are active, else null. */
  private readonly cache = new Map<string, { owner: string | null; until: number }>()
  /** Lookups in flight, shared so a burst of connections makes one query per device. */
  private readonly pending = new Map<string, Promise<string | null>>()
  /** Bumped by forget(): a lookup that began before a revocation must not be cached after it. */
  private epoch = 0

  constructor(private readonly exec: Executor) {}

  /** The device's user while device and user are active in the organization; null otherwise. */
  async ownerOf(orgId: string, deviceId: string): Promise<string | null> {
    const key = `${orgId}/${deviceId}`
    const hit = this.cache.get(key)
    if (hit && hit.until > Date.now()) return hit.owner
    const epoch = this.epoch
    let lookup = this.pending.get(key)
    if (!lookup) {
      const started = activeDeviceOwner(this.exec, orgId, deviceId).finally(() => {
        if (this.pending.get(key) === started) this.pending.delete(key)
      })
      this.pending.set(key, (lookup = started))
    }
    const owner = await lookup
    if (epoch !== this.epoch) return this.ownerOf(orgId, deviceId)
    if (this.cache.size >= MAX_ENTRIES) this.cache.clear()
    this.cache.set(key, { owner, until: Date.now() + CACHE_MS })
    return owner
  }

  /** Drops what is known of a device: the next check asks the database. */
  forget(orgId: string, deviceId: string): void {
    this.epoch++
    this.cache.delete(`${orgId}/${deviceId}`)
    this.pending.delete(`${orgId}/${deviceId}`)
  }

  /** Drops what is known of every device of a user (removed from the organization). */
  forgetUser(orgId: string, userId: string): void {
    this.epoch++
    this.pending.clear()
    for (const [key, entry] of this.cache) if (entry.owner === userId && key.startsWith(`${orgId}/`)) this.cache.delete(key)
  }
}
