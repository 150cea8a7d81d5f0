/**
 * Devices: a user lists and adds their own, and revokes their own; an owner or
 * admin may list (`?userId=`) and revoke anyone's in the organization. A device
 * the caller may not manage answers 404 like a missing one.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { TaskSyncError } from '../protocol/errors.js'
import { createDevice, getDevice, listDevices } from '../storage/devices.js'
import { isAdmin } from '../auth/permissions.js'
import { decodeCursor, isIdKey, toPage } from './pagination.js'
import { Device, DeviceInput, IdParams, PageOf, PageQuery, Uuid, bearer, errorResponses } from './schemas.js'

const ListQuery = Type.Object({ ...PageQuery.properties, userId: Type.Optional(Uuid) })

const deviceRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { db } = app.database
  app.addHook('onRequest', app.authenticate)

  app.get(
    '/api/devices',
    { schema: { tags: ['devices'], security: bearer, querystring: ListQuery, response: { 200: PageOf(Device), ...errorResponses(400, 401, 403) } } },
    async (request) => {
      const { principal } = request
      const { cursor, limit, userId = principal.userId } = request.query
      if (userId !== principal.userId && !isAdmin(principal)) throw new TaskSyncError('forbidden', "only an owner or admin may list another user's devices")
      const after = cursor ? decodeCursor(cursor, isIdKey).id : undefined
      const rows = await listDevices(db, principal.orgId, userId, after, limit + 1)
      return toPage(rows, limit, (d) => ({ id: d.id }))
    },
  )

  app.post(
    '/api/devices',
    {
      schema: { tags: ['devices'], summary: 'Register another device of the caller (log in with its id to use it)', security: bearer, body: DeviceInput, response: { 201: Device, ...errorResponses(400, 401, 409) } },
    },
    async (request, reply) => {
      const device = await createDevice(db, request.principal.orgId, request.principal.userId, request.body)
      return reply.code(201).send(device)
    },
  )

  app.delete(
    '/api/devices/:id',
    {
      schema: { tags: ['devices'], summary: 'Revoke a device: its refresh and access tokens stop working', security: bearer, params: IdParams, response: { 204: Type.Null(), ...errorResponses(400, 401, 404) } },
    },
    async (request, reply) => {
      const { principal } = request
      const device = await getDevice(db, principal.orgId, request.params.id)
      if (!device || (device.userId !== principal.userId && !isAdmin(principal))) throw new TaskSyncError('not_found', 'no such device')
      await app.tokens.revokeDevice(principal.orgId, device.id)
      return reply.code(204).send(null)
    },
  )
}

export default deviceRoutes
