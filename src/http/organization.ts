/** The caller's organization: read its settings (anyone), change its name or search language (owner or admin). */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { TaskSyncError } from '../protocol/errors.js'
import { assertAdmin } from '../auth/permissions.js'
import { getOrganizationSettings, searchLanguages, updateOrganization } from '../storage/organizations.js'
import { OrgName, Uuid, bearer, errorResponses } from './schemas.js'

const SearchLanguage = Type.String({ minLength: 1, maxLength: 63, pattern: '^[a-z_]+$', description: 'a PostgreSQL text search configuration: simple, english, german, …' })

const OrganizationSettings = Type.Object({
  id: Uuid,
  name: Type.String(),
  searchLanguage: Type.String({ description: 'the text search configuration of the task search (q of GET /api/tasks)' }),
  searchLanguages: Type.Array(Type.String(), { description: 'the languages this server offers' }),
  createdAt: Type.String({ format: 'date-time' }),
})

const PatchOrganizationBody = Type.Object(
  { name: Type.Optional(OrgName), searchLanguage: Type.Optional(SearchLanguage) },
  { additionalProperties: false, minProperties: 1 },
)

const organizationRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.addHook('onRequest', app.authenticate)

  const read = async (orgId: string) => {
    const org = await getOrganizationSettings(app.database, orgId)
    if (!org) throw new TaskSyncError('unauthorized', 'this organization no longer exists')
    return { ...org, searchLanguages: await searchLanguages(app.database) }
  }

  app.get(
    '/api/organization',
    { schema: { tags: ['organization'], summary: "The caller's organization and its search language", security: bearer, response: { 200: OrganizationSettings, ...errorResponses(401) } } },
    async (request) => read(request.principal.orgId),
  )

  app.patch(
    '/api/organization',
    {
      schema: {
        tags: ['organization'],
        summary: 'Rename the organization or change its search language (owner or admin; a new language re-indexes its tasks)',
        security: bearer,
        body: PatchOrganizationBody,
        response: { 200: OrganizationSettings, ...errorResponses(400, 401, 403) },
      },
    },
    async (request) => {
      assertAdmin(request.principal)
      const { name, searchLanguage } = request.body
      if (searchLanguage !== undefined && !(await searchLanguages(app.database)).includes(searchLanguage)) {
        throw new TaskSyncError('bad_request', `unknown search language ${JSON.stringify(searchLanguage)}`)
      }
      await updateOrganization(app.database, request.principal.orgId, { name: name?.trim(), searchLanguage })
      return read(request.principal.orgId)
    },
  )
}

export default organizationRoutes
