/**
 * Whether an access token's claims still name a live identity: the device
 * exists in the organization, is not revoked and belongs to a user of that
 * organization who has not been removed.
 */
import { and, eq, isNull } from 'drizzle-orm'
import type { Executor } from './db.js'
import { devices, users } from './schema.js'

/** The user the device belongs to when device and user are both active in the organization; else null. */
export async function activeDeviceOwner(exec: Executor, orgId: string, deviceId: string): Promise<string | null> {
  const [row] = await exec
    .select({ userId: devices.userId })
    .from(devices)
    .innerJoin(users, and(eq(users.orgId, devices.orgId), eq(users.id, devices.userId)))
    .where(and(eq(devices.orgId, orgId), eq(devices.id, deviceId), isNull(devices.revokedAt), isNull(users.deactivatedAt)))
    .limit(1)
  return row?.userId ?? null
}
