/**
 * Decorates `app.database`: PostgreSQL when DATABASE_URL is set, otherwise PGlite
 * under DATA_DIR, and `app.taskStore`, the sequencer's port onto it, whose op log
 * reads go through `app.opRanges` (sync/op-ranges.ts). Migrations
 * run here, before any route can answer. Runs the search indexer (search-index.ts)
 * every SEARCH_INDEX_INTERVAL_MS: the search vectors of rows changed since its last round.
 */
import fp from 'fastify-plugin'
import { openDatabase, type Database } from './db.js'
import { postgresTaskStore } from './postgres-task-store.js'
import type { TaskStore } from './task-store.js'
import { OpRanges, withOpRanges } from './sync/op-ranges.js'
import { reindexAll } from './search-index.js'
import { untilUp } from '../config/startup-wait.js'

/** host:port/database of a connection URL, without its credentials. */
function redactedHost(url: string): string {
  try {
    const u = new URL(url)
    return `${u.hostname}:${u.port || 5432}${u.pathname}`
  } catch {
    return 'DATABASE_URL'
  }
}

/** How often the search indexer re-indexes the rows commits marked stale. */
export const SEARCH_INDEX_INTERVAL_MS = 1000

declare module 'fastify' {
  interface FastifyInstance {
    database: Database
    taskStore: TaskStore
    /** The op log ranges catch-ups read, shared by the devices reading them (taskStore.loadOps goes through them). */
    opRanges: OpRanges
  }
}

export interface StoragePluginOptions {
  /** An already open database (tests); it is not closed with the app. */
  database?: Database
}

export default fp<StoragePluginOptions>(
  async (app, opts) => {
    const { DATABASE_URL, DATA_DIR, DATABASE_POOL_SIZE, DATABASE_CONNECT_TIMEOUT_MS, STARTUP_WAIT_MS } = app.config
    const open = () =>
      openDatabase({
        databaseUrl: DATABASE_URL,
        dataDir: DATA_DIR,
        poolSize: DATABASE_POOL_SIZE,
        connectTimeoutMs: DATABASE_CONNECT_TIMEOUT_MS,
        onBreaker: (state) => (state === 'open' ? app.log.warn('PostgreSQL unreachable: answering unavailable at once while probing') : app.log.info('PostgreSQL reachable again')),
      })
    // PostgreSQL may start after this instance: wait for it (STARTUP_WAIT_MS) rather than exit.
    const database =
      opts.database ??
      (DATABASE_URL ? await untilUp(open, { what: `PostgreSQL at ${redactedHost(DATABASE_URL)}`, waitMs: STARTUP_WAIT_MS, log: (m) => app.log.warn(m) }) : await open())
    app.decorate('database', database)
    const store = postgresTaskStore(database)
    const opRanges = new OpRanges(store.loadOps)
    app.decorate('opRanges', opRanges)
    app.decorate('taskStore', withOpRanges(store, opRanges))

    // Each instance runs it: a batch skips the rows another one holds (search-index.ts). A failed
    // round (database unreachable) is retried next interval; search reads stale rows meanwhile.
    let timer: NodeJS.Timeout | undefined
    let running: Promise<unknown> = Promise.resolve()
    const tick = () => {
      running = reindexAll(database)
        .catch((err) => app.log.warn({ err }, 'search indexing failed; retrying next interval'))
        .finally(() => {
          if (timer) timer = setTimeout(tick, SEARCH_INDEX_INTERVAL_MS).unref()
        })
    }
    app.addHook('onReady', async () => {
      timer = setTimeout(tick, SEARCH_INDEX_INTERVAL_MS).unref()
    })
    app.addHook('onClose', async () => {
      clearTimeout(timer)
      timer = undefined
      await running
      if (!opts.database) await database.close()
    })
  },
  { name: 'storage', dependencies: ['config'] },
)
