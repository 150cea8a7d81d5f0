/**
 * Decorates `app.comments`: comment changes on the app's task store, clientIds
 * bound by the sequencer. On close it drains like the sequencer.
 */
import fp from 'fastify-plugin'
import { CommentService } from './service.js'

declare module 'fastify' {
  interface FastifyInstance {
    comments: CommentService
  }
}

export default fp(
  async (app) => {
    const { config, taskStore, bus, sequencer } = app
    const comments = new CommentService({
      store: taskStore,
      bus,
      instanceId: config.INSTANCE_ID,
      bodyMax: config.limits.commentBodyMax,
      bindClient: (principal, clientId) => sequencer.bindClient(principal, clientId),
      logger: app.log.child({ module: 'comments' }),
    })
    app.decorate('comments', comments)
    // preClose runs before any onClose hook, so the bus and database are still open.
    app.addHook('preClose', () => comments.drain())
  },
  { name: 'comments', dependencies: ['config', 'storage', 'bus', 'sequencer'] },
)
