/** Users of the caller's organization: me, list, and creation by an admin. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { TaskSyncError } from '../protocol/errors.js'
import { getUser, insertUser, listUsers } from '../auth/accounts.js'
import { hashPassword } from '../auth/passwords.js'
import { assertAdmin } from '../auth/permissions.js'
import { decodeCursor, isIdKey, toPage } from './pagination.js'
import { DisplayName, Email, PageOf, PageQuery, Password, Role, User, bearer, errorResponses } from './schemas.js'

const CreateUserBody = Type.Object(
  { email: Email, password: Password, displayName: DisplayName, role: Role },
  { additionalProperties: false },
)

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
      schema: { tags: ['users'], summary: 'Add a user to the organization (owner or admin)', security: bearer, body: CreateUserBody, response: { 201: User, ...errorResponses(400, 401, 403, 409) } },
    },
    async (request, reply) => {
      const { principal } = request
      assertAdmin(principal)
      const { role } = request.body
      if (role === 'owner' && principal.role !== 'owner') throw new TaskSyncError('forbidden', 'only an owner may add another owner')
      const passwordHash = await hashPassword(request.body.password, app.config.SCRYPT_LOG_N)
      const user = await insertUser(db, principal.orgId, { ...request.body, passwordHash })
      return reply.code(201).send(user)
    },
  )
}

export default userRoutes
