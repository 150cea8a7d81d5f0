/**
 * Wire shapes of the REST resources owned by the foundation (users, organizations,
 * devices, projects, sessions) and the shared building blocks: ids, error body, pages.
 * They drive validation, serialization and the OpenAPI document at once.
 */
import { Type, type TSchema } from 'typebox'

export const Uuid = Type.String({ format: 'uuid' })
export const IdParams = Type.Object({ id: Uuid })
const Timestamp = Type.String({ format: 'date-time' })
const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()])

export const Role = Type.Union([Type.Literal('owner'), Type.Literal('admin'), Type.Literal('member'), Type.Literal('viewer')])

export const ErrorResponse = Type.Object({
  error: Type.Object({
    code: Type.String(),
    message: Type.String(),
    details: Type.Optional(Type.Unknown()),
  }),
})

/** `{items, nextCursor}`: nextCursor is null on the last page. */
export const PageOf = <T extends TSchema>(item: T) => Type.Object({ items: Type.Array(item), nextCursor: Nullable(Type.String()) })

export const PageQuery = Type.Object({
  cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 512 })),
  limit: Type.Integer({ minimum: 1, maximum: 200, default: 50 }),
})

export const User = Type.Object({
  id: Uuid,
  orgId: Uuid,
  email: Type.String(),
  displayName: Type.String(),
  role: Role,
  createdAt: Timestamp,
})

export const Organization = Type.Object({ id: Uuid, name: Type.String(), createdAt: Timestamp })

export const Device = Type.Object({
  id: Uuid,
  userId: Uuid,
  name: Type.String(),
  platform: Type.String(),
  createdAt: Timestamp,
  lastSeenAt: Nullable(Timestamp),
  revokedAt: Nullable(Timestamp),
})

export const Project = Type.Object({
  id: Uuid,
  name: Type.String(),
  createdBy: Uuid,
  createdAt: Timestamp,
  updatedAt: Timestamp,
  archivedAt: Nullable(Timestamp),
})

export const Session = Type.Object({
  accessToken: Type.String(),
  refreshToken: Type.String(),
  /** Seconds until the access token expires. */
  expiresIn: Type.Integer(),
  user: User,
  organization: Organization,
  device: Device,
})

/** Inputs with the limits that keep rows small. */
const Name = Type.String({ minLength: 1, maxLength: 200, pattern: '\\S' })
export const DeviceInput = Type.Object(
  { id: Type.Optional(Uuid), name: Name, platform: Type.String({ minLength: 1, maxLength: 64 }) },
  { additionalProperties: false },
)
export const Email = Type.String({ format: 'email', maxLength: 254 })
export const Password = Type.String({ minLength: 8, maxLength: 1024 })
export const DisplayName = Name
export const ProjectName = Name
export const OrgName = Name

/** Standard error responses for the OpenAPI document. */
export function errorResponses(...statuses: number[]): Record<number, typeof ErrorResponse> {
  return Object.fromEntries(statuses.map((s) => [s, ErrorResponse]))
}

/** `security` of a route that needs a bearer access token. */
export const bearer = [{ bearer: [] as string[] }]
