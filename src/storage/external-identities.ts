/**
 * Organizations, users and devices provisioned from an identity provider's tokens
 * (bring-your-own auth). Each is found by what the provider names it: an
 * organization by (issuer, org claim), a user by (organization, issuer, sub), a
 * device by (user, device key); the unique indexes on those make provisioning
 * safe under concurrency: every step is an insert that does nothing on conflict,
 * then a read in a new statement, which sees whichever insert won (on any
 * instance). Built-in rows have null issuer, subject and device key, so an
 * external identity never meets a built-in one.
 */
import { randomUUID } from 'node:crypto'
import { and, count, eq, isNull, lte, or } from 'drizzle-orm'
import type { Executor } from './db.js'
import { devices, organizations, users } from './schema.js'
import type { Role } from '../auth/types.js'
import { TaskSyncError } from '../protocol/errors.js'

/** What a verified token says of its holder. */
export interface ExternalIdentity {
  issuer: string
  /** The organization claim (or AUTH_DEFAULT_ORG). */
  orgRef: string
  subject: string
  deviceKey: string
  role: Role
  name: string
  email: string
  /** The token's `iat` (seconds). */
  issuedAt: number
}

export interface ProvisionedIds {
  orgId: string
  userId: string
  deviceId: string
}

/** The organization's id, created on first sight (named after the claim). */
export async function ensureExternalOrganization(exec: Executor, issuer: string, orgRef: string): Promise<string> {
  const inserted = await exec
    .insert(organizations)
    .values({ id: randomUUID(), name: orgRef.slice(0, 200), issuer, externalId: orgRef })
    .onConflictDoNothing({ target: [organizations.issuer, organizations.externalId] })
    .returning({ id: organizations.id })
  if (inserted[0]) return inserted[0].id
  const [row] = await exec
    .select({ id: organizations.id })
    .from(organizations)
    .where(and(eq(organizations.issuer, issuer), eq(organizations.externalId, orgRef)))
    .limit(1)
  return row.id
}

/**
 * The user's id, created on first sight. A known user's role, name and email are
 * brought up to date from a token at least as recent as the one they were last
 * taken from (tokens issued in another order never roll a change back). A
 * deactivated user stays deactivated: the caller's liveness check refuses them.
 */
export async function ensureExternalUser(exec: Executor, orgId: string, id: ExternalIdentity): Promise<string> {
  const inserted = await exec
    .insert(users)
    .values({
      orgId,
      id: randomUUID(),
      email: id.email,
      displayName: id.name,
      // No password: verifyPassword refuses a malformed hash, and login never looks at external users.
      passwordHash: '',
      role: id.role,
      issuer: id.issuer,
      subject: id.subject,
      profileIat: id.issuedAt,
    })
    .onConflictDoNothing({ target: [users.orgId, users.issuer, users.subject] })
    .returning({ id: users.id })
  if (inserted[0]) return inserted[0].id
  const mine = and(eq(users.orgId, orgId), eq(users.issuer, id.issuer), eq(users.subject, id.subject))
  await exec
    .update(users)
    .set({ role: id.role, displayName: id.name, email: id.email, profileIat: id.issuedAt })
    .where(and(mine, isNull(users.deactivatedAt), or(isNull(users.profileIat), lte(users.profileIat, id.issuedAt))))
  const [row] = await exec.select({ id: users.id }).from(users).where(mine).limit(1)
  return row.id
}

/**
 * Live devices one external user may have: device keys are the client's choice, so without
 * a bound one token could fill the table. Checked only when a new key shows up; two keys
 * racing past the bound at once may both get in, which is harmless.
 */
export const MAX_EXTERNAL_DEVICES = 100

/** The id of the user's device with this key, registered on first sight (a revoked one stays revoked). */
export async function ensureExternalDevice(exec: Executor, orgId: string, userId: string, deviceKey: string): Promise<string> {
  const mine = and(eq(devices.orgId, orgId), eq(devices.userId, userId))
  const [known] = await exec.select({ id: devices.id }).from(devices).where(and(mine, eq(devices.deviceKey, deviceKey))).limit(1)
  if (known) return known.id
  const [{ live }] = await exec.select({ live: count() }).from(devices).where(and(mine, isNull(devices.revokedAt)))
  if (live >= MAX_EXTERNAL_DEVICES) {
    throw new TaskSyncError('forbidden', `this user already has ${MAX_EXTERNAL_DEVICES} devices: revoke one (DELETE /api/devices/:id) or reuse a device key`)
  }
  const inserted = await exec
    .insert(devices)
    .values({ orgId, id: randomUUID(), userId, name: deviceKey.slice(0, 200), platform: 'external', deviceKey, lastSeenAt: new Date() })
    .onConflictDoNothing({ target: [devices.orgId, devices.userId, devices.deviceKey] })
    .returning({ id: devices.id })
  if (inserted[0]) return inserted[0].id
  const [row] = await exec
    .select({ id: devices.id })
    .from(devices)
    .where(and(eq(devices.orgId, orgId), eq(devices.userId, userId), eq(devices.deviceKey, deviceKey)))
    .limit(1)
  return row.id
}

/** Whether the user came from an identity provider (whose tokens then carry their role). */
export async function isExternalUser(exec: Executor, orgId: string, userId: string): Promise<boolean> {
  const [row] = await exec.select({ issuer: users.issuer }).from(users).where(and(eq(users.orgId, orgId), eq(users.id, userId))).limit(1)
  return !!row?.issuer
}

/** Organization, user and device of a verified external token, each created on first sight. */
export async function provisionExternal(exec: Executor, id: ExternalIdentity): Promise<ProvisionedIds> {
  const orgId = await ensureExternalOrganization(exec, id.issuer, id.orgRef)
  const userId = await ensureExternalUser(exec, orgId, id)
  const deviceId = await ensureExternalDevice(exec, orgId, userId, id.deviceKey)
  return { orgId, userId, deviceId }
}
