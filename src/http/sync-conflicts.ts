/**
 * The conflict queue: `GET /api/sync/conflicts` (open by default, oldest first)
 * and `POST /api/sync/conflicts/:id/resolve` with `{choose: 'committed'|'incoming'}`
 * or `{value}`. Anyone in the organization may read the queue; members and above
 * may resolve.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { TaskSyncError } from '../protocol/errors.js'
import { opContent } from './text.js'
import { PageOf, errorResponses } from './schemas.js'
import { Conflict } from './sync-schemas.js'
import { canWrite } from '../auth/permissions.js'
import { listConflicts, loadConflict } from '../storage/conflicts.js'
import { resolveConflict, type ResolveInput } from '../sync/conflicts.js'
import type { JsonValue } from '../domain/types.js'

const Uuid = Type.String({ format: 'uuid' })

const ListQuery = Type.Object({
  status: Type.Optional(Type.Union([Type.Literal('open'), Type.Literal('resolved'), Type.Literal('all')])),
  taskId: Type.Optional(Uuid),
  cursor: Type.Optional(Type.String({ maxLength: 512 })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500 })),
})

const ResolveBody = Type.Object(
  {
    choose: Type.Optional(Type.Union([Type.Literal('committed'), Type.Literal('incoming')])),
    value: Type.Optional(opContent(Type.Unknown())),
  },
  { additionalProperties: false },
)

const conflictRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/api/sync/conflicts',
    { onRequest: app.authenticate, schema: { tags: ['sync'], summary: 'The conflict queue', security: [{ bearer: [] }], querystring: ListQuery, response: { 200: PageOf(Conflict), ...errorResponses(400, 401, 503) } } },
    async (request) => {
      const q = request.query
      return listConflicts(app.database, request.principal.orgId, { status: q.status ?? 'open', taskId: q.taskId, cursor: q.cursor, limit: q.limit ?? 100 })
    },
  )

  app.get(
    '/api/sync/conflicts/:id',
    { onRequest: app.authenticate, schema: { tags: ['sync'], summary: 'One conflict', security: [{ bearer: [] }], params: Type.Object({ id: Uuid }), response: { 200: Conflict, ...errorResponses(400, 401, 404, 503) } } },
    async (request) => {
      const conflict = await loadConflict(app.database, request.principal.orgId, request.params.id)
      if (!conflict) throw new TaskSyncError('not_found', 'no such conflict')
      return conflict
    },
  )

  app.post(
    '/api/sync/conflicts/:id/resolve',
    {
      onRequest: app.authenticate,
      schema: {
        tags: ['sync'],
        summary: 'Settle a conflict; the resolution is committed as an op',
        security: [{ bearer: [] }],
        params: Type.Object({ id: Uuid }),
        body: ResolveBody,
        response: { 200: Conflict, ...errorResponses(400, 401, 403, 404, 409, 410, 422, 503) },
      },
    },
    async (request) => {
      const body = request.body
      const hasValue = Object.prototype.hasOwnProperty.call(body, 'value')
      if ((body.choose === undefined) === !hasValue) throw new TaskSyncError('bad_request', 'give exactly one of choose or value')
      if (!canWrite(request.principal)) throw new TaskSyncError('forbidden', 'your role may read tasks but not change them')
      const input: ResolveInput = body.choose ? { choose: body.choose } : { value: (body.value ?? null) as JsonValue }
      return resolveConflict({ database: app.database, limits: app.config.limits, sequencer: app.sequencer }, request.principal, request.params.id, input)
    },
  )
}

export default conflictRoutes
