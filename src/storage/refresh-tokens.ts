/**
 * Rotating refresh tokens. The client holds a random opaque token; the server
 * keeps only its SHA-256. Each login starts a family; every refresh spends the
 * presented token and issues the next one in the family. Presenting a spent
 * token means it was copied: the whole family (that login) is revoked.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto'
import { and, eq, gt, isNull } from 'drizzle-orm'
import type { Db, Executor } from './db.js'
import { devices, refreshTokens } from './schema.js'
import { TaskSyncError } from '../protocol/errors.js'

export const hashToken = (token: string) => createHash('sha256').update(token).digest('hex')

export interface TokenOwner {
  orgId: string
  userId: string
  deviceId: string
}

/** Issues a token in a family (a new family when none is given). */
export async function issueRefreshToken(exec: Executor, owner: TokenOwner, ttlS: number, familyId: string = randomUUID()): Promise<string> {
  const token = randomBytes(32).toString('base64url')
  await exec.insert(refreshTokens).values({
    id: randomUUID(),
    ...owner,
    familyId,
    tokenHash: hashToken(token),
    expiresAt: new Date(Date.now() + ttlS * 1000),
  })
  return token
}

type Outcome = { ok: true; owner: TokenOwner; token: string } | { ok: false; reused: boolean }

/**
 * Spends a refresh token and returns its owner with the next token of the family.
 * Unknown, expired or revoked: `unauthorized`. Already spent: the family is
 * revoked, then `unauthorized`.
 */
export async function rotateRefreshToken(db: Db, token: string, ttlS: number): Promise<TokenOwner & { token: string }> {
  const hash = hashToken(token)
  const outcome: Outcome = await db.transaction(async (tx) => {
    // The conditional update is the lock: of two concurrent refreshes with one token, one wins.
    const [spent] = await tx
      .update(refreshTokens)
      .set({ spentAt: new Date() })
      .where(and(eq(refreshTokens.tokenHash, hash), isNull(refreshTokens.spentAt), isNull(refreshTokens.revokedAt), gt(refreshTokens.expiresAt, new Date())))
      .returning()
    if (!spent) {
      const [row] = await tx.select().from(refreshTokens).where(eq(refreshTokens.tokenHash, hash)).limit(1)
      return { ok: false, reused: !!row && row.spentAt !== null && row.revokedAt === null }
    }
    const owner = { orgId: spent.orgId, userId: spent.userId, deviceId: spent.deviceId }
    const [device] = await tx
      .select({ revokedAt: devices.revokedAt })
      .from(devices)
      .where(and(eq(devices.orgId, owner.orgId), eq(devices.id, owner.deviceId)))
      .limit(1)
    if (!device || device.revokedAt) return { ok: false, reused: false }
    return { ok: true, owner, token: await issueRefreshToken(tx, owner, ttlS, spent.familyId) }
  })
  if (outcome.ok) return { ...outcome.owner, token: outcome.token }
  if (outcome.reused) {
    await revokeFamilyOf(db, token)
    throw new TaskSyncError('unauthorized', 'refresh token already used: this session is revoked, log in again')
  }
  throw new TaskSyncError('unauthorized', 'invalid or expired refresh token')
}

/** Revokes the family (the login) this token belongs to; false when the token is unknown. */
export async function revokeFamilyOf(db: Db, token: string): Promise<boolean> {
  const [row] = await db.select({ familyId: refreshTokens.familyId }).from(refreshTokens).where(eq(refreshTokens.tokenHash, hashToken(token))).limit(1)
  if (!row) return false
  await db
    .update(refreshTokens)
    .set({ revokedAt: new Date() })
    .where(and(eq(refreshTokens.familyId, row.familyId), isNull(refreshTokens.revokedAt)))
  return true
}
