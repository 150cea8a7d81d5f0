/** The account entities as the API shows them (timestamps as RFC 3339 strings). */
import type { Role } from './principal.js'

export type { Role }

export interface UserDto {
  id: string
  orgId: string
  email: string
  displayName: string
  role: Role
  createdAt: string
}

export interface OrganizationDto {
  id: string
  name: string
  createdAt: string
}

export interface DeviceDto {
  id: string
  userId: string
  name: string
  platform: string
  createdAt: string
  lastSeenAt: string | null
  revokedAt: string | null
}

/** What register, login and refresh answer. */
export interface SessionDto {
  accessToken: string
  refreshToken: string
  expiresIn: number
  user: UserDto
  organization: OrganizationDto
  device: DeviceDto
}

export interface DeviceInput {
  id?: string
  name: string
  platform: string
}

export const iso = (d: Date | null): string | null => (d ? d.toISOString() : null)
