/**
 * Who is asking: read from a verified access token, handed to every layer that
 * decides what a caller may do (auth routes, the sequencer, comments, the gateway).
 */

/** The roles of PROTOCOL.md: owner > admin > member > viewer. */
export type Role = 'owner' | 'admin' | 'member' | 'viewer'

export interface Principal {
  orgId: string
  userId: string
  deviceId: string
  role: Role
}
