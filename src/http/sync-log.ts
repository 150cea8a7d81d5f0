/** `GET /api/sync/log`: the organization's pushes, pulls and resumes, newest first (admins only). */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { TaskSyncError } from '../protocol/errors.js'
import { isAdmin } from '../auth/permissions.js'
import { listSyncLog } from '../storage/sync/log.js'
import { PageOf, errorResponses } from './schemas.js'
import { SyncLogItem } from './sync-schemas.js'

const Query = Type.Object({
  deviceId: Type.Optional(Type.String({ format: 'uuid' })),
  userId: Type.Optional(Type.String({ format: 'uuid' })),
  kind: Type.Optional(Type.Union([Type.Literal('push'), Type.Literal('pull'), Type.Literal('resume')])),
  cursor: Type.Optional(Type.String({ pattern: '^[1-9][0-9]{0,17}$' })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500 })),
})

const syncLogRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/api/sync/log',
    { onRequest: app.authenticate, schema: { tags: ['sync'], summary: 'Sync log (admins)', security: [{ bearer: [] }], querystring: Query, response: { 200: PageOf(SyncLogItem), ...errorResponses(400, 401, 403, 503) } } },
    async (request) => {
      if (!isAdmin(request.principal)) throw new TaskSyncError('forbidden', 'only admins may read the sync log')
      const { cursor, limit = 100, ...filter } = request.query
      const items = await listSyncLog(app.database, request.principal.orgId, { ...filter, beforeId: cursor ? Number(cursor) : undefined, limit: limit + 1 })
      const page = items.slice(0, limit)
      return { items: page, nextCursor: items.length > limit ? String(page.at(-1)!.id) : null }
    },
  )
}

export default syncLogRoutes
