/**
 * Changing the people of an organization: a display name, a role, or removing
 * someone (deactivation: no login, every device revoked; their tasks, ops,
 * history and comments keep naming them). Owners and admins manage people;
 * only an owner may make or unmake an owner, and an organization always keeps
 * at least one active owner (checked under a lock on its owners, so two admins
 * demoting the last two owners at once cannot both win).
 */
import { and, eq, isNull } from 'drizzle-orm'
import type { Db } from './db.js'
import { events, users } from './schema.js'
import { TaskSyncError } from '../protocol/errors.js'
import type { Principal } from '../auth/principal.js'
import { memberEvent, toUser } from './accounts.js'
import { assertAdmin } from '../auth/permissions.js'
import type { Role, UserDto } from '../auth/types.js'

export type MemberChange = { displayName?: string; role?: Role } | { deactivate: true }

/**
 * Applies `change` to the active user `targetId` of the actor's organization and
 * answers the user as it is now. Errors: not_found (no such active user),
 * forbidden (the actor's role may not, or the last owner would be lost).
 */
export async function changeMember(db: Db, actor: Principal, targetId: string, change: MemberChange): Promise<UserDto> {
  return db.transaction(async (tx) => {
    const active = and(eq(users.orgId, actor.orgId), eq(users.id, targetId), isNull(users.deactivatedAt))
    const [target] = await tx.select().from(users).where(active).limit(1)
    if (!target) throw new TaskSyncError('not_found', `no user ${targetId} in this organization`)
    const deactivate = 'deactivate' in change
    const role = deactivate ? undefined : change.role
    const displayName = deactivate ? undefined : change.displayName?.trim()
    // An identity provider's user gets role and name from its tokens: a change here would be undone by the next one.
    if (target.issuer && (role !== undefined || displayName !== undefined)) {
      throw new TaskSyncError('forbidden', "this user's role and name come from their identity provider: change them there")
    }
    if (displayName !== undefined && actor.userId !== targetId) assertAdmin(actor)
    if (deactivate || (role !== undefined && role !== target.role)) {
      assertAdmin(actor)
      if ((target.role === 'owner' || role === 'owner') && actor.role !== 'owner') {
        throw new TaskSyncError('forbidden', 'only an owner may make or unmake an owner')
      }
      if (target.role === 'owner') {
        const owners = await tx
          .select({ id: users.id })
          .from(users)
          .where(and(eq(users.orgId, actor.orgId), eq(users.role, 'owner'), isNull(users.deactivatedAt)))
          .for('update')
        if (owners.length <= 1) throw new TaskSyncError('forbidden', 'an organization keeps at least one owner: make someone else owner first')
      }
    }
    const set: Partial<typeof users.$inferInsert> = {}
    if (deactivate) set.deactivatedAt = new Date()
    if (role !== undefined) set.role = role
    if (displayName !== undefined) set.displayName = displayName
    if (Object.keys(set).length === 0) return toUser(target)
    const [row] = await tx.update(users).set(set).where(active).returning()
    const user = toUser(row)
    await tx.insert(events).values(memberEvent(deactivate ? 'member.removed' : 'member.updated', user, actor.userId))
    return user
  })
}
