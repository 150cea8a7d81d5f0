/**
 * Decorates `app.bus`: Redis when REDIS_URL is set, otherwise the in-process bus
 * (one instance only: fan-out never leaves the process).
 */
import fp from 'fastify-plugin'
import type { Bus } from './types.js'
import { MemoryBus } from './memory.js'
import { RedisBus } from './redis.js'
import { untilUp } from '../config/startup-wait.js'

declare module 'fastify' {
  interface FastifyInstance {
    bus: Bus
  }
}

export default fp(
  async (app) => {
    const { REDIS_URL, REDIS_PREFIX, INSTANCE_ID, STARTUP_WAIT_MS } = app.config
    // Redis may start after this instance: wait for it (STARTUP_WAIT_MS) rather than exit.
    const bus: Bus = REDIS_URL
      ? await untilUp(
          () =>
            RedisBus.connect({
              url: REDIS_URL,
              prefix: REDIS_PREFIX,
              instanceId: INSTANCE_ID,
              log: (level, msg) => app.log[level](msg),
            }),
          { what: 'Redis', waitMs: STARTUP_WAIT_MS, log: (m) => app.log.warn(m) },
        )
      : new MemoryBus(INSTANCE_ID)
    app.decorate('bus', bus)
    // Closed after everything registered later (sockets, sequencer) has finished with it.
    app.addHook('onClose', () => bus.close())
  },
  { name: 'bus', dependencies: ['config'] },
)
