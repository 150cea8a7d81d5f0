/**
 * The migrations in drizzle/ are the schema in src/storage/schema.ts: drizzle-kit,
 * run on a copy of the folder, finds nothing to generate (a schema change without
 * its migration, or snapshots that lost a table in a merge, fail here).
 */
import t from 'tap'
import { execFile } from 'node:child_process'
import { cpSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')

t.test('drizzle-kit finds no schema change missing from drizzle/', async (t) => {
  const dir = mkdtempSync(join(ROOT, '.tmp-migrations-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  cpSync(join(ROOT, 'drizzle'), dir, { recursive: true })
  const before = readdirSync(dir).sort()
  const bin = join(ROOT, 'node_modules', '.bin', 'drizzle-kit')
  // drizzle-kit wants a relative --out (it prefixes './').
  const { stdout } = await promisify(execFile)(bin, ['generate', '--dialect', 'postgresql', '--schema', 'src/storage/schema.ts', '--out', relative(ROOT, dir)], { cwd: ROOT })
  t.match(stdout, /No schema changes/, 'nothing to generate')
  t.same(readdirSync(dir).sort(), before, 'no new migration file')
})
