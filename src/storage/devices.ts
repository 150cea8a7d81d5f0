/**
 * Devices: one per app install of a user, named in every access token. A
 * revoked device keeps its row (history names it) but gets no more tokens.
 */
import { randomUUID } from 'node:crypto'
import { and, asc, eq, gt, isNull } from 'drizzle-orm'
import type { Db, Executor } from './db.js'
import { devices, refreshTokens } from './schema.js'
import { isUniqueViolation } from './errors.js'
import { TaskSyncError } from '../protocol/errors.js'
import { iso, type DeviceDto, type DeviceInput } from '../auth/types.js'

type DeviceRow = typeof devices.$inferSelect

export function toDevice(row: DeviceRow): DeviceDto {
  return {
    id: row.id,
    userId: row.userId,
    name: row.name,
    platform: row.platform,
    createdAt: row.createdAt.toISOString(),
    lastSeenAt: iso(row.lastSeenAt),
    revokedAt: iso(row.revokedAt),
  }
}

export async function getDevice(exec: Executor, orgId: string, id: string): Promise<DeviceDto | null> {
  const [row] = await exec.select().from(devices).where(and(eq(devices.orgId, orgId), eq(devices.id, id))).limit(1)
  return row ? toDevice(row) : null
}

/** Adds a device for a user; an id already used in the organization is `already_exists`. */
export async function createDevice(exec: Executor, orgId: string, userId: string, input: DeviceInput): Promise<DeviceDto> {
  try {
    const [row] = await exec
      .insert(devices)
      .values({ orgId, userId, id: input.id ?? randomUUID(), name: input.name, platform: input.platform, lastSeenAt: new Date() })
      .returning()
    return toDevice(row)
  } catch (err) {
    if (isUniqueViolation(err)) throw new TaskSyncError('already_exists', 'a device with this id already exists')
    throw err
  }
}

/**
 * The device a login is for. A known, live device of this user is reused (name and
 * platform refreshed). An id that is unknown in the organization is registered as
 * given. An id that is revoked or belongs to someone else gets a fresh id instead:
 * a login never revives a revoked device nor reveals another user's.
 */
export async function resolveLoginDevice(db: Db, orgId: string, userId: string, input: DeviceInput): Promise<DeviceDto> {
  if (input.id) {
    const existing = await getDevice(db, orgId, input.id)
    if (existing && existing.userId === userId && !existing.revokedAt) {
      const [row] = await db
        .update(devices)
        .set({ name: input.name, platform: input.platform, lastSeenAt: new Date() })
        .where(and(eq(devices.orgId, orgId), eq(devices.id, input.id)))
        .returning()
      return toDevice(row)
    }
    if (!existing) {
      try {
        return await createDevice(db, orgId, userId, input)
      } catch (err) {
        // Someone registered the same id a moment ago: fall through to a fresh id.
        if (!(err instanceof TaskSyncError && err.code === 'already_exists')) throw err
      }
    }
  }
  return createDevice(db, orgId, userId, { name: input.name, platform: input.platform })
}

/** Devices of one user (or of the whole organization when userId is undefined), ordered by id. */
export async function listDevices(exec: Executor, orgId: string, userId: string | undefined, after: string | undefined, limit: number): Promise<DeviceDto[]> {
  const rows = await exec
    .select()
    .from(devices)
    .where(and(eq(devices.orgId, orgId), userId ? eq(devices.userId, userId) : undefined, after ? gt(devices.id, after) : undefined))
    .orderBy(asc(devices.id))
    .limit(limit)
  return rows.map(toDevice)
}

/** Marks a device revoked and revokes every refresh token it holds, at once. Idempotent. */
export async function revokeDevice(db: Db, orgId: string, id: string): Promise<void> {
  await db.transaction(async (tx) => {
    const now = new Date()
    await tx.update(devices).set({ revokedAt: now }).where(and(eq(devices.orgId, orgId), eq(devices.id, id), isNull(devices.revokedAt)))
    await tx
      .update(refreshTokens)
      .set({ revokedAt: now })
      .where(and(eq(refreshTokens.orgId, orgId), eq(refreshTokens.deviceId, id), isNull(refreshTokens.revokedAt)))
  })
}

/** Ids of the user's devices not revoked yet (to revoke them all when the user is removed). */
export async function activeDevicesOf(exec: Executor, orgId: string, userId: string): Promise<string[]> {
  const rows = await exec
    .select({ id: devices.id })
    .from(devices)
    .where(and(eq(devices.orgId, orgId), eq(devices.userId, userId), isNull(devices.revokedAt)))
  return rows.map((r) => r.id)
}
