/**
 * Webhook endpoints of the caller's organization (owners and admins only): CRUD,
 * a test event, the delivery log with its dead letters, and redelivery of them.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { randomBytes, randomUUID } from 'node:crypto'
import { TaskSyncError } from '../protocol/errors.js'
import { assertAdmin } from '../auth/permissions.js'
import { EVENT_TYPES } from '../events/types.js'
import { refuseTarget } from '../events/sender.js'
import { isUniqueViolation } from '../storage/errors.js'
import {
  deleteEndpoint, insertEndpoint, listDeliveries, listEndpoints, loadEndpoint, queueTestEvent, redeliverDead, updateEndpoint,
} from '../storage/events/webhooks.js'
import { IdParams, Uuid, bearer, errorResponses } from './schemas.js'

const Timestamp = Type.String({ format: 'date-time' })
const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) => Type.Union([t, Type.Null()])
const EventName = Type.Union([Type.Literal('*'), ...EVENT_TYPES.filter((e) => e !== 'webhook.test').map((e) => Type.Literal(e))])
const Events = Type.Array(EventName, { minItems: 1, maxItems: 32, uniqueItems: true })
const Url = Type.String({ minLength: 8, maxLength: 2000, pattern: '^https?://' })
/** `whsec_` and a base64 key of 24 to 64 bytes, as the Standard Webhooks libraries take it. */
const Secret = Type.String({ pattern: '^whsec_[A-Za-z0-9+/]{32,88}={0,2}$' })

const Endpoint = Type.Object({
  id: Uuid,
  url: Type.String(),
  events: Type.Array(Type.String()),
  active: Type.Boolean(),
  /** True once a delivery ran out of retries: new events wait as dead letters until a redeliver. */
  failing: Type.Boolean(),
  failingSince: Nullable(Timestamp),
  createdAt: Timestamp,
  updatedAt: Timestamp,
})
const EndpointWithSecret = Type.Object({ ...Endpoint.properties, secret: Type.String() })
const CreateBody = Type.Object(
  { id: Type.Optional(Uuid), url: Url, events: Events, secret: Type.Optional(Secret), active: Type.Optional(Type.Boolean()) },
  { additionalProperties: false },
)
const PatchBody = Type.Object(
  { url: Type.Optional(Url), events: Type.Optional(Events), secret: Type.Optional(Secret), active: Type.Optional(Type.Boolean()) },
  { additionalProperties: false },
)
const Delivery = Type.Object({
  id: Type.Integer(),
  eventId: Uuid,
  eventType: Type.String(),
  state: Type.Union([Type.Literal('pending'), Type.Literal('delivered'), Type.Literal('dead')]),
  attempts: Type.Integer(),
  lastStatus: Nullable(Type.Integer()),
  lastError: Nullable(Type.String()),
  latencyMs: Nullable(Type.Integer()),
  createdAt: Timestamp,
  deliveredAt: Nullable(Timestamp),
  nextAttemptAt: Nullable(Timestamp),
})
const DeliveryQuery = Type.Object(
  {
    state: Type.Optional(Type.Union([Type.Literal('pending'), Type.Literal('delivered'), Type.Literal('dead')])),
    /** Deliveries older than this one (the previous page's last id). */
    before: Type.Optional(Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER })),
    limit: Type.Integer({ minimum: 1, maximum: 200, default: 50 }),
  },
  { additionalProperties: false },
)

const notFound = () => new TaskSyncError('not_found', 'no such webhook endpoint')
const newSecret = () => `whsec_${randomBytes(24).toString('base64')}`

const webhookRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { database } = app
  const allowPrivate = app.config.WEBHOOK_ALLOW_PRIVATE === 'true'
  app.addHook('onRequest', app.authenticate)
  const checkUrl = (url: string | undefined) => {
    const why = url === undefined ? null : refuseTarget(url, allowPrivate)
    if (why) throw new TaskSyncError('bad_request', why, { path: '/url' })
  }
  const tags = ['webhooks']

  app.get(
    '/api/webhooks',
    { schema: { tags, security: bearer, response: { 200: Type.Object({ items: Type.Array(Endpoint) }), ...errorResponses(401, 403) } } },
    async (request) => {
      assertAdmin(request.principal)
      return { items: await listEndpoints(database, request.principal.orgId) }
    },
  )

  app.post(
    '/api/webhooks',
    {
      schema: {
        tags,
        summary: 'Add an endpoint: {url, events: [type…] or ["*"], secret?, active?}; the answer carries its signing secret',
        security: bearer,
        body: CreateBody,
        response: { 201: EndpointWithSecret, ...errorResponses(400, 401, 403, 409) },
      },
    },
    async (request, reply) => {
      assertAdmin(request.principal)
      const { id = randomUUID(), url, events, secret = newSecret(), active = true } = request.body
      checkUrl(url)
      try {
        const created = await insertEndpoint(database, request.principal.orgId, { id, url, events: normalize(events), secret, active })
        return reply.code(201).send(created)
      } catch (err) {
        if (isUniqueViolation(err)) throw new TaskSyncError('already_exists', 'a webhook endpoint with this id already exists')
        throw err
      }
    },
  )

  app.patch(
    '/api/webhooks/:id',
    {
      schema: {
        tags,
        summary: 'Change url, events, secret or active (active: true also clears `failing`)',
        security: bearer,
        params: IdParams,
        body: PatchBody,
        response: { 200: Endpoint, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (request) => {
      assertAdmin(request.principal)
      checkUrl(request.body.url)
      const { events, ...rest } = request.body
      const changed = await updateEndpoint(database, request.principal.orgId, request.params.id, { ...rest, events: events && normalize(events) })
      return changed ?? Promise.reject(notFound())
    },
  )

  app.delete(
    '/api/webhooks/:id',
    { schema: { tags, security: bearer, params: IdParams, response: { 204: Type.Null(), ...errorResponses(401, 403, 404) } } },
    async (request, reply) => {
      assertAdmin(request.principal)
      if (!(await deleteEndpoint(database, request.principal.orgId, request.params.id))) throw notFound()
      return reply.code(204).send(null)
    },
  )

  app.post(
    '/api/webhooks/:id/test',
    {
      schema: {
        tags,
        summary: 'Queue a `webhook.test` event for this endpoint alone',
        security: bearer,
        params: IdParams,
        response: { 202: Type.Object({ eventId: Uuid }), ...errorResponses(401, 403, 404) },
      },
    },
    async (request, reply) => {
      assertAdmin(request.principal)
      const { orgId, userId } = request.principal
      if (!(await loadEndpoint(database, orgId, request.params.id))) throw notFound()
      const eventId = await queueTestEvent(database, orgId, request.params.id, userId)
      app.events.dispatcher.wake()
      return reply.code(202).send({ eventId })
    },
  )

  app.get(
    '/api/webhooks/:id/deliveries',
    {
      schema: {
        tags,
        summary: 'The delivery log, newest first (status, latency, attempts); state=dead lists the dead letters',
        security: bearer,
        params: IdParams,
        querystring: DeliveryQuery,
        response: { 200: Type.Object({ items: Type.Array(Delivery) }), ...errorResponses(401, 403, 404) },
      },
    },
    async (request) => {
      assertAdmin(request.principal)
      const { orgId } = request.principal
      if (!(await loadEndpoint(database, orgId, request.params.id))) throw notFound()
      return { items: await listDeliveries(database, orgId, request.params.id, request.query) }
    },
  )

  app.post(
    '/api/webhooks/:id/redeliver',
    {
      schema: {
        tags,
        summary: 'Send the dead letters again (a fresh retry window) and clear `failing`',
        security: bearer,
        params: IdParams,
        response: { 200: Type.Object({ redelivered: Type.Integer() }), ...errorResponses(401, 403, 404) },
      },
    },
    async (request) => {
      assertAdmin(request.principal)
      const { orgId } = request.principal
      if (!(await loadEndpoint(database, orgId, request.params.id))) throw notFound()
      const redelivered = await redeliverDead(database, orgId, request.params.id)
      app.events.dispatcher.wake()
      return { redelivered }
    },
  )
}

/** `*` alone stands for everything. */
const normalize = (events: string[]) => (events.includes('*') ? ['*'] : events)

export default webhookRoutes
