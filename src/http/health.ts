/**
 * Liveness (`/health`: the process answers, cheap, for load balancers) and
 * readiness detail (`/api/health`: database, bus, instance, open sockets).
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'

const Liveness = Type.Object({ status: Type.Union([Type.Literal('ok'), Type.Literal('draining')]) })
const Detail = Type.Object({
  status: Type.Union([Type.Literal('ok'), Type.Literal('degraded'), Type.Literal('unavailable')]),
  instanceId: Type.String(),
  draining: Type.Boolean(),
  uptimeS: Type.Number(),
  database: Type.Object({ kind: Type.String(), status: Type.Union([Type.Literal('up'), Type.Literal('down')]) }),
  bus: Type.Object({ kind: Type.String(), status: Type.Union([Type.Literal('up'), Type.Literal('down')]) }),
  connections: Type.Integer(),
})

const health: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/health',
    { schema: { tags: ['health'], response: { 200: Liveness, 503: Liveness } } },
    async (_request, reply) => (app.draining ? reply.code(503).send({ status: 'draining' }) : { status: 'ok' as const }),
  )

  app.get(
    '/api/health',
    { schema: { tags: ['health'], response: { 200: Detail, 503: Detail } } },
    async (_request, reply) => {
      const databaseUp = await pingWithin(() => app.database.ping(), 2000)
      const busUp = app.bus.status() === 'up'
      // Without its database an instance can do nothing useful: 503 so a balancer stops routing to it.
      const status = !databaseUp || app.draining ? 'unavailable' : busUp ? 'ok' : 'degraded'
      return reply.code(status === 'unavailable' ? 503 : 200).send({
        status,
        instanceId: app.instanceId,
        draining: app.draining,
        uptimeS: Math.round(process.uptime()),
        database: { kind: app.database.kind, status: databaseUp ? 'up' : 'down' },
        bus: { kind: app.bus.kind, status: busUp ? 'up' : 'down' },
        connections: app.connections.count(),
      })
    },
  )
}

/** A database that does not answer in time counts as down: health checks must answer quickly. */
async function pingWithin(ping: () => Promise<boolean>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)))
  try {
    return await Promise.race([ping(), timeout])
  } finally {
    clearTimeout(timer)
  }
}

export default health
