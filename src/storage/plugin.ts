/**
 * Decorates `app.database`: PostgreSQL when DATABASE_URL is set, otherwise PGlite
 * under DATA_DIR, and `app.taskStore`, the sequencer's port onto it. Migrations
 * run here, before any route can answer.
 */
import fp from 'fastify-plugin'
import { openDatabase, type Database } from './db.js'
import { postgresTaskStore } from './postgres-task-store.js'
import type { TaskStore } from './task-store.js'

declare module 'fastify' {
  interface FastifyInstance {
    database: Database
    taskStore: TaskStore
  }
}

export interface StoragePluginOptions {
  /** An already open database (tests); it is not closed with the app. */
  database?: Database
}

export default fp<StoragePluginOptions>(
  async (app, opts) => {
    const { DATABASE_URL, DATA_DIR, DATABASE_POOL_SIZE, DATABASE_CONNECT_TIMEOUT_MS } = app.config
    const database =
      opts.database ??
      (await openDatabase({
        databaseUrl: DATABASE_URL,
        dataDir: DATA_DIR,
        poolSize: DATABASE_POOL_SIZE,
        connectTimeoutMs: DATABASE_CONNECT_TIMEOUT_MS,
        onBreaker: (state) => (state === 'open' ? app.log.warn('PostgreSQL unreachable: answering unavailable at once while probing') : app.log.info('PostgreSQL reachable again')),
      }))
    app.decorate('database', database)
    app.decorate('taskStore', postgresTaskStore(database))
    if (!opts.database) app.addHook('onClose', () => database.close())
  },
  { name: 'storage', dependencies: ['config'] },
)
