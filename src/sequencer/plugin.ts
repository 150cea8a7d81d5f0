/**
 * Decorates `app.sequencer` (task ops) and `app.comments`. On close both drain:
 * new mutations answer `unavailable`, begun commits finish and are published
 * before the bus and the database close.
 */
import fp from 'fastify-plugin'
import { TaskSequencer } from './sequencer.js'
import { CommentService } from './comments.js'

declare module 'fastify' {
  interface FastifyInstance {
    sequencer: TaskSequencer
    comments: CommentService
  }
}

export default fp(
  async (app) => {
    const { config, database, bus } = app
    const logger = app.log.child({ module: 'sequencer' })
    const sequencer = new TaskSequencer({
      database,
      bus,
      limits: config.limits,
      instanceId: config.INSTANCE_ID,
      replayWindow: config.REPLAY_WINDOW_OPS,
      logger,
    })
    const comments = new CommentService({
      database,
      bus,
      instanceId: config.INSTANCE_ID,
      bodyMax: config.limits.commentBodyMax,
      sequencer,
      logger,
    })
    app.decorate('sequencer', sequencer)
    app.decorate('comments', comments)
    // preClose runs before any onClose hook, so the bus and database are still open.
    app.addHook('preClose', async () => {
      await Promise.all([sequencer.drain(), comments.drain()])
    })
  },
  { name: 'sequencer', dependencies: ['config', 'storage', 'bus'] },
)
