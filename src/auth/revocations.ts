/**
 * Whether a token's device is still allowed. Every verification asks, so answers
 * are cached briefly: a revocation made on any instance takes effect everywhere
 * within CACHE_MS, and at once on instances that hear of it on the bus.
 */
import type { Executor } from '../storage/db.js'
import { isDeviceActive } from '../storage/devices.js'

const CACHE_MS = 1000
const MAX_ENTRIES = 50_000

export class DeviceRevocations {
  private readonly cache = new Map<string, { active: boolean; until: number }>()
  /** Lookups in flight, shared so a burst of connections makes one query per device. */
  private readonly pending = new Map<string, Promise<boolean>>()
  /** Bumped by forget(): a lookup that began before a revocation must not be cached after it. */
  private epoch = 0

  constructor(private readonly exec: Executor) {}

  async isActive(orgId: string, deviceId: string): Promise<boolean> {
    const key = `${orgId}/${deviceId}`
    const hit = this.cache.get(key)
    if (hit && hit.until > Date.now()) return hit.active
    const epoch = this.epoch
    let lookup = this.pending.get(key)
    if (!lookup) {
      const started = isDeviceActive(this.exec, orgId, deviceId).finally(() => {
        if (this.pending.get(key) === started) this.pending.delete(key)
      })
      this.pending.set(key, (lookup = started))
    }
    const active = await lookup
    if (epoch !== this.epoch) return this.isActive(orgId, deviceId)
    if (this.cache.size >= MAX_ENTRIES) this.cache.clear()
    this.cache.set(key, { active, until: Date.now() + CACHE_MS })
    return active
  }

  /** Drops what is known of a device: the next check asks the database. */
  forget(orgId: string, deviceId: string): void {
    this.epoch++
    this.cache.delete(`${orgId}/${deviceId}`)
    this.pending.delete(`${orgId}/${deviceId}`)
  }
}
