/** Decorates `app.config` (validated and frozen by loadConfig) and `app.instanceId`. */
import fp from 'fastify-plugin'
import type { Config } from './load.js'

declare module 'fastify' {
  interface FastifyInstance {
    config: Readonly<Config>
    /** This instance's id: in /api/health, `welcome`, and on everything it publishes. */
    instanceId: string
  }
}

export default fp<{ config: Readonly<Config> }>(
  async (app, { config }) => {
    app.decorate('config', config)
    app.decorate('instanceId', config.INSTANCE_ID)
  },
  { name: 'config' },
)
