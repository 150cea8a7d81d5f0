/**
 * A session is what register, login and refresh answer: an access token for
 * one device plus the refresh token that renews it.
 */
import type { Db } from '../storage/db.js'
import { TaskSyncError } from '../protocol/errors.js'
import { getDevice } from '../storage/devices.js'
import { getOrganization, getUser } from '../storage/accounts.js'
import { issueRefreshToken, rotateRefreshToken } from '../storage/refresh-tokens.js'
import { signAccessToken, type SigningKeys } from './tokens.js'
import type { DeviceDto, OrganizationDto, SessionDto, UserDto } from './types.js'

export interface SessionDeps {
  db: Db
  keys: SigningKeys
  accessTtlS: number
  refreshTtlS: number
}

async function accessFor(deps: SessionDeps, user: UserDto, device: DeviceDto) {
  const principal = { orgId: user.orgId, userId: user.id, deviceId: device.id, role: user.role }
  return signAccessToken(deps.keys, principal, deps.accessTtlS)
}

/** Starts a new login (a new refresh-token family) for a user on a device. */
export async function openSession(deps: SessionDeps, user: UserDto, organization: OrganizationDto, device: DeviceDto): Promise<SessionDto> {
  const refreshToken = await issueRefreshToken(deps.db, { orgId: user.orgId, userId: user.id, deviceId: device.id }, deps.refreshTtlS)
  const { token } = await accessFor(deps, user, device)
  return { accessToken: token, refreshToken, expiresIn: deps.accessTtlS, user, organization, device }
}

/** Spends a refresh token and answers the next pair, with the user's current role. */
export async function refreshSession(deps: SessionDeps, refreshToken: string): Promise<SessionDto> {
  const next = await rotateRefreshToken(deps.db, refreshToken, deps.refreshTtlS)
  const [user, organization, device] = await Promise.all([
    getUser(deps.db, next.orgId, next.userId),
    getOrganization(deps.db, next.orgId),
    getDevice(deps.db, next.orgId, next.deviceId),
  ])
  if (!user || !organization || !device) throw new TaskSyncError('unauthorized', 'invalid or expired refresh token')
  const { token } = await accessFor(deps, user, device)
  return { accessToken: token, refreshToken: next.token, expiresIn: deps.accessTtlS, user, organization, device }
}

/** With AUTH_BUILTIN=false, the routes of built-in accounts answer this. */
export function builtinAuthOff(): TaskSyncError {
  return new TaskSyncError('forbidden', "built-in accounts are turned off on this server (AUTH_BUILTIN=false): sign in with the app's identity provider", {
    reason: 'builtin_auth_disabled',
  })
}
