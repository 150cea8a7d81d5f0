/** Projects of the caller's organization: list, create, rename, archive. Viewers may only list. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { TaskSyncError } from '../protocol/errors.js'
import { assertCanWrite } from '../auth/permissions.js'
import { archiveProject, createProject, listProjects, renameProject } from '../storage/projects.js'
import { decodeCursor, isIdKey, toPage } from './pagination.js'
import { IdParams, PageOf, PageQuery, Project, ProjectName, Uuid, bearer, errorResponses } from './schemas.js'

const ListQuery = Type.Object({ ...PageQuery.properties, includeArchived: Type.Boolean({ default: false }) })
const CreateBody = Type.Object({ id: Type.Optional(Uuid), name: ProjectName }, { additionalProperties: false })
const RenameBody = Type.Object({ name: ProjectName }, { additionalProperties: false })

const notFound = () => new TaskSyncError('not_found', 'no such project')

const projectRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { db } = app.database
  app.addHook('onRequest', app.authenticate)

  app.get(
    '/api/projects',
    { schema: { tags: ['projects'], security: bearer, querystring: ListQuery, response: { 200: PageOf(Project), ...errorResponses(400, 401) } } },
    async (request) => {
      const { cursor, limit, includeArchived } = request.query
      const after = cursor ? decodeCursor(cursor, isIdKey).id : undefined
      const rows = await listProjects(db, request.principal.orgId, { after, limit: limit + 1, includeArchived })
      return toPage(rows, limit, (p) => ({ id: p.id }))
    },
  )

  app.post(
    '/api/projects',
    { schema: { tags: ['projects'], security: bearer, body: CreateBody, response: { 201: Project, ...errorResponses(400, 401, 403, 409) } } },
    async (request, reply) => {
      assertCanWrite(request.principal)
      const project = await createProject(db, request.principal.orgId, request.principal.userId, { ...request.body, name: request.body.name.trim() })
      return reply.code(201).send(project)
    },
  )

  app.patch(
    '/api/projects/:id',
    { schema: { tags: ['projects'], security: bearer, params: IdParams, body: RenameBody, response: { 200: Project, ...errorResponses(400, 401, 403, 404) } } },
    async (request) => {
      assertCanWrite(request.principal)
      return (await renameProject(db, request.principal.orgId, request.params.id, request.body.name.trim())) ?? Promise.reject(notFound())
    },
  )

  app.post(
    '/api/projects/:id/archive',
    { schema: { tags: ['projects'], security: bearer, params: IdParams, response: { 200: Project, ...errorResponses(400, 401, 403, 404) } } },
    async (request) => {
      assertCanWrite(request.principal)
      return (await archiveProject(db, request.principal.orgId, request.params.id)) ?? Promise.reject(notFound())
    },
  )
}

export default projectRoutes
