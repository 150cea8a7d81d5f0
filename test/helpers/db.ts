/**
 * Test databases: each test file gets its own PostgreSQL database, created and
 * migrated here and dropped at teardown, so runs never collide.
 */
import { randomBytes } from 'node:crypto'
import postgres from 'postgres'
import { openDatabase, type Database } from '../../src/storage/index.js'
import type { Teardown } from './teardown.js'

export const PG_ADMIN_URL = process.env.TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'
export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'

function urlFor(name: string): string {
  const u = new URL(PG_ADMIN_URL)
  u.pathname = '/' + name
  return u.toString()
}

/** Creates a database (a copy of `template` when given), dropped at teardown. Returns its URL. */
async function testDatabase(t: Teardown, template?: string): Promise<string> {
  const name = `tasksync_test_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`
  const admin = postgres(PG_ADMIN_URL, { max: 1, onnotice: () => {} })
  try {
    await admin.unsafe(`create database ${name}${template ? ` template ${template}` : ''}`)
  } finally {
    await admin.end()
  }
  t.teardown(async () => {
    const a = postgres(PG_ADMIN_URL, { max: 1, onnotice: () => {} })
    await a.unsafe(`drop database if exists ${name} with (force)`)
    await a.end()
  })
  return urlFor(name)
}

/** Creates an empty, migrated database for one test file; dropped at teardown. Returns its URL. */
export const createTestDatabaseUrl = (t: Teardown): Promise<string> => testDatabase(t)

/**
 * A copy of the database at `url` as it is now (a backup to restore later), dropped at
 * teardown. Nothing may be connected to the source: close its apps first.
 */
export const copyTestDatabase = (t: Teardown, url: string): Promise<string> => testDatabase(t, new URL(url).pathname.slice(1))

/** A migrated database opened for direct use (closed at teardown). */
export async function createTestDatabase(t: Teardown): Promise<Database> {
  const url = await createTestDatabaseUrl(t)
  const database = await openDatabase({ databaseUrl: url, dataDir: '/tmp', poolSize: 5 })
  t.teardown(() => database.close())
  return database
}

/** A unique Redis prefix for one test file, so runs never see each other. */
export function testRedisPrefix(): string {
  return `tasksync-test:${randomBytes(6).toString('hex')}:`
}
