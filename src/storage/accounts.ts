/**
 * Organizations and users. An email identifies one user across the server
 * (login is by email alone); everything else is scoped to an organization.
 */
import { randomUUID } from 'node:crypto'
import { and, asc, eq, gt, isNull, sql } from 'drizzle-orm'
import type { Db, Executor } from './db.js'
import { events, organizations, users } from './schema.js'
import { isUniqueViolation } from './errors.js'
import { TaskSyncError } from '../protocol/errors.js'
import type { OrganizationDto, Role, UserDto } from '../auth/types.js'

type UserRow = typeof users.$inferSelect
type OrgRow = typeof organizations.$inferSelect

export function toUser(row: UserRow): UserDto {
  return { id: row.id, orgId: row.orgId, email: row.email, displayName: row.displayName, role: row.role, createdAt: row.createdAt.toISOString() }
}

export function toOrganization(row: OrgRow): OrganizationDto {
  return { id: row.id, name: row.name, createdAt: row.createdAt.toISOString() }
}

/** Emails are compared case-insensitively and stored trimmed and lower-cased. */
export const normalizeEmail = (email: string) => email.trim().toLowerCase()

export interface NewUser {
  email: string
  displayName: string
  passwordHash: string
  role: Role
}

/** The outbox row of a change to the people of an organization (never the password hash). */
export function memberEvent(type: 'member.added' | 'member.updated' | 'member.removed', user: UserDto, actorId: string): typeof events.$inferInsert {
  const { id, email, displayName, role } = user
  return { orgId: user.orgId, type, actorId, change: { user: { id, email, displayName, role } } }
}

const emailTaken = () => new TaskSyncError('already_exists', 'this email is already registered')

/** Inserts a user and its member.added event (one transaction, or a savepoint in the caller's); a taken email is `already_exists`. */
export async function insertUser(exec: Executor, orgId: string, input: NewUser, actorId?: string): Promise<UserDto> {
  try {
    return await (exec as Db).transaction(async (tx) => {
      const [row] = await tx
        .insert(users)
        .values({ orgId, id: randomUUID(), email: normalizeEmail(input.email), displayName: input.displayName.trim(), passwordHash: input.passwordHash, role: input.role })
        .returning()
      const user = toUser(row)
      await tx.insert(events).values(memberEvent('member.added', user, actorId ?? user.id))
      return user
    })
  } catch (err) {
    if (isUniqueViolation(err)) throw emailTaken()
    throw err
  }
}

/** Creates an organization and its owner in one transaction. */
export async function createOrganizationWithOwner(
  db: Db,
  input: { orgName: string } & Omit<NewUser, 'role'>,
): Promise<{ organization: OrganizationDto; user: UserDto }> {
  // Checked first so the common case answers without a failed transaction; the index still decides races.
  if (await findUserByEmail(db, input.email)) throw emailTaken()
  return db.transaction(async (tx) => {
    const [org] = await tx.insert(organizations).values({ id: randomUUID(), name: input.orgName.trim() }).returning()
    const user = await insertUser(tx, org.id, { ...input, role: 'owner' })
    return { organization: toOrganization(org), user }
  })
}

/**
 * The built-in user with this email (any organization), its password hash and whether it was
 * deactivated, for login. Users provisioned from an identity provider are never found: they
 * have no password here, and their email is only what their provider says.
 */
export async function findUserByEmail(exec: Executor, email: string): Promise<(UserDto & { passwordHash: string; deactivated: boolean }) | null> {
  const [row] = await exec.select().from(users).where(and(sql`lower(${users.email}) = ${normalizeEmail(email)}`, isNull(users.issuer))).limit(1)
  return row ? { ...toUser(row), passwordHash: row.passwordHash, deactivated: row.deactivatedAt !== null } : null
}

/** An active (not deactivated) user of the organization. */
export async function getUser(exec: Executor, orgId: string, userId: string): Promise<UserDto | null> {
  const [row] = await exec
    .select()
    .from(users)
    .where(and(eq(users.orgId, orgId), eq(users.id, userId), isNull(users.deactivatedAt)))
    .limit(1)
  return row ? toUser(row) : null
}

export async function getOrganization(exec: Executor, orgId: string): Promise<OrganizationDto | null> {
  const [row] = await exec.select().from(organizations).where(eq(organizations.id, orgId)).limit(1)
  return row ? toOrganization(row) : null
}

/** Active users of one organization ordered by id, after the given id; fetches `limit` rows. */
export async function listUsers(exec: Executor, orgId: string, after: string | undefined, limit: number): Promise<UserDto[]> {
  const rows = await exec
    .select()
    .from(users)
    .where(and(eq(users.orgId, orgId), isNull(users.deactivatedAt), after ? gt(users.id, after) : undefined))
    .orderBy(asc(users.id))
    .limit(limit)
  return rows.map(toUser)
}
