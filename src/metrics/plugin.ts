/**
 * Decorates `app.metrics.registry` (prom-client): Node default metrics plus the
 * duration of every HTTP request by route. Other plugins add their own metrics to
 * the same registry; GET /metrics serves it as Prometheus text.
 */
import fp from 'fastify-plugin'
import { Registry, collectDefaultMetrics, Histogram } from 'prom-client'

declare module 'fastify' {
  interface FastifyInstance {
    metrics: { registry: Registry }
  }
}

export default fp(
  async (app) => {
    // One registry per app, not prom-client's global one: tests run several apps per process.
    const registry = new Registry()
    registry.setDefaultLabels({ instance_id: app.instanceId })
    collectDefaultMetrics({ register: registry })
    const duration = new Histogram({
      name: 'tasksync_http_request_duration_seconds',
      help: 'HTTP request duration by method, route and status',
      labelNames: ['method', 'route', 'status_code'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    })
    app.decorate('metrics', { registry })

    app.addHook('onResponse', async (request, reply) => {
      // The route pattern, never the raw URL: ids in paths must not explode the label set.
      const route = request.routeOptions.url ?? 'unmatched'
      duration.observe(
        { method: request.method, route, status_code: String(reply.statusCode) },
        reply.elapsedTime / 1000,
      )
    })

    app.get('/metrics', { schema: { hide: true } }, async (_request, reply) => {
      reply.type(registry.contentType)
      return registry.metrics()
    })
  },
  { name: 'metrics', dependencies: ['config'] },
)
