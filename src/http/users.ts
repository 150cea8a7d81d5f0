/** Users of the caller's organization: me, list, creation, changes and removal (owners and admins manage people). */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { TaskSyncError } from '../protocol/errors.js'
import { getUser, insertUser, listUsers } from '../storage/accounts.js'
import { hashPassword } from '../auth/passwords.js'
import { assertAdmin } from '../auth/permissions.js'
import { changeMember } from '../storage/members.js'
import { activeDevicesOf } from '../storage/devices.js'
import { decodeCursor, isIdKey, toPage } from './pagination.js'
import { DisplayName, Email, IdParams, PageOf, PageQuery, Password, Role, User, bearer, errorResponses } from './schemas.js'
import { builtinAuthOff } from '../auth/sessions.js'

const CreateUserBody = Type.Object(
  { email: Email, password: Password, displayName: DisplayName, role: Role },
  { additionalProperties: false },
)

const PatchUserBody = Type.Object({ displayName: Type.Optional(DisplayName), role: Type.Optional(Role) }, { additionalProperties: false, minProperties: 1 })

const userRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { db } = app.database
  app.addHook('onRequest', app.authenticate)

  app.get('/api/users/me', { schema: { tags: ['users'], security: bearer, response: { 200: User, ...errorResponses(401) } } }, async (request) => {
    const user = await getUser(db, request.principal.orgId, request.principal.userId)
    if (!user) throw new TaskSyncError('unauthorized', 'this user no longer exists')
    return user
  })

  app.get(
    '/api/users',
    { schema: { tags: ['users'], security: bearer, querystring: PageQuery, response: { 200: PageOf(User), ...errorResponses(400, 401) } } },
    async (request) => {
      const { cursor, limit } = request.query
      const after = cursor ? decodeCursor(cursor, isIdKey).id : undefined
      const rows = await listUsers(db, request.principal.orgId, after, limit + 1)
      return toPage(rows, limit, (u) => ({ id: u.id }))
    },
  )

  app.post(
    '/api/users',
    {
      schema: { tags: ['users'], summary: 'Add a built-in user (with a password) to the organization (owner or admin; 403 with AUTH_BUILTIN=false)', security: bearer, body: CreateUserBody, response: { 201: User, ...errorResponses(400, 401, 403, 409) } },
    },
    async (request, reply) => {
      const { principal } = request
      assertAdmin(principal)
      // A password account nobody could log in with would only be a trap.
      if (!app.config.builtinAuth) throw builtinAuthOff()
      const { role } = request.body
      if (role === 'owner' && principal.role !== 'owner') throw new TaskSyncError('forbidden', 'only an owner may add another owner')
      const passwordHash = await hashPassword(request.body.password, app.config.SCRYPT_LOG_N)
      const user = await insertUser(db, principal.orgId, { ...request.body, passwordHash }, principal.userId)
      return reply.code(201).send(user)
    },
  )

  app.patch(
    '/api/users/:id',
    {
      schema: {
        tags: ['users'],
        summary: "Change a user's display name (the user or an admin) or role (owner or admin; only an owner makes or unmakes an owner). Takes effect at the user's next token refresh.",
        security: bearer,
        params: IdParams,
        body: PatchUserBody,
        response: { 200: User, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (request) => changeMember(db, request.principal, request.params.id, request.body),
  )

  app.delete(
    '/api/users/:id',
    {
      schema: {
        tags: ['users'],
        summary: 'Remove a user from the organization (owner or admin): no more logins, every device revoked and its sockets closed; their tasks, history and comments stay',
        security: bearer,
        params: IdParams,
        response: { 204: Type.Null(), ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (request, reply) => {
      const { principal } = request
      await changeMember(db, principal, request.params.id, { deactivate: true })
      await app.tokens.userRemoved(principal.orgId, request.params.id)
      for (const deviceId of await activeDevicesOf(db, principal.orgId, request.params.id)) {
        await app.tokens.revokeDevice(principal.orgId, deviceId)
      }
      return reply.code(204).send(null)
    },
  )
}

export default userRoutes
