/**
 * README's configuration table names every environment variable the config schema
 * reads, so an operator never meets a setting the README does not explain.
 */
import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { ConfigSchema } from '../src/config/schema.js'

t.test('every config variable is documented in README.md', async (t) => {
  const readme = readFileSync(join(import.meta.dirname, '..', 'README.md'), 'utf8')
  const table = readme.split('\n').filter((line) => line.startsWith('| `'))
  const keys = Object.keys(ConfigSchema.properties)
  t.ok(keys.length > 50, `${keys.length} variables`)
  // A row's first cell names one variable or several ("`S3_ACCESS_KEY_ID`, `S3_SECRET_ACCESS_KEY`").
  const named = new Set(table.flatMap((line) => [...line.split('|')[1]!.matchAll(/`([A-Z0-9_]+)`/g)].map((m) => m[1]!)))
  const missing = keys.filter((key) => !named.has(key))
  t.same(missing, [], 'each has a row (or shares one) in a README table')
})
