/**
 * What a role may do. Roles: owner > admin > member > viewer. Viewers read;
 * members also write tasks and comments; admins and owners manage people.
 */
import type { Principal } from './principal.js'
import { TaskSyncError } from '../protocol/errors.js'
import type { Role } from './types.js'

export type { Role }
export const ROLES: readonly Role[] = ['owner', 'admin', 'member', 'viewer']

/** May change tasks, comments and projects (everyone but a viewer). */
export function canWrite(principal: Principal): boolean {
  return principal.role !== 'viewer'
}

/** May manage users and other people's devices (owner or admin). */
export function isAdmin(principal: Principal): boolean {
  return principal.role === 'owner' || principal.role === 'admin'
}

/** Throws `forbidden` unless the caller may write. */
export function assertCanWrite(principal: Principal): void {
  if (!canWrite(principal)) throw new TaskSyncError('forbidden', 'your role may read but not change this')
}

/** Throws `forbidden` unless the caller is an owner or admin. */
export function assertAdmin(principal: Principal): void {
  if (!isAdmin(principal)) throw new TaskSyncError('forbidden', 'only an owner or admin may do this')
}
