#!/usr/bin/env node
/**
 * `npm run seed -- --orgs 1 --users 5 --projects 10 --tasks 10000 --history 3 [--comments 0]`:
 * demo and benchmark data written through the real storage (see storage/seed-data.ts),
 * into DATABASE_URL or the PGlite store under DATA_DIR. Prints the credentials
 * of every user it created.
 */
import { parseArgs } from 'node:util'
import { loadConfig } from '../config/index.js'
import { openDatabase } from '../storage/db.js'
import { hashPassword } from '../auth/passwords.js'
import { seedData } from '../storage/seed-data.js'

const USAGE = `usage: npm run seed -- [--orgs 1] [--users 5] [--projects 10] [--tasks 1000] [--history 3] [--comments 0] [--json]
  --users     per organization: the first is the owner, the second an admin, the rest members
  --tasks     per organization, spread over the projects
  --history   edits per task after its creation (revs, op log and history entries)
  --comments  comments per task
  --json      print the created organizations and credentials as JSON`

const NUMBERS = { orgs: 1, users: 5, projects: 10, tasks: 1000, history: 3, comments: 0 } as const

function readCount(name: keyof typeof NUMBERS, raw: string | undefined): number {
  if (raw === undefined) return NUMBERS[name]
  if (!/^\d+$/.test(raw)) throw new Error(`--${name} must be a non-negative integer, got ${JSON.stringify(raw)}`)
  return Number(raw)
}

async function main(): Promise<void> {
  const options = Object.fromEntries(Object.keys(NUMBERS).map((k) => [k, { type: 'string' as const }]))
  const { values } = parseArgs({ options: { ...options, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } })
  if (values.help) {
    console.log(USAGE)
    return
  }
  const n = Object.fromEntries(Object.keys(NUMBERS).map((k) => [k, readCount(k as keyof typeof NUMBERS, (values as Record<string, unknown>)[k] as string | undefined)])) as Record<keyof typeof NUMBERS, number>
  if (n.orgs < 1 || n.users < 1) throw new Error('--orgs and --users must be at least 1')
  const config = loadConfig(process.env)
  const database = await openDatabase({ databaseUrl: config.DATABASE_URL, dataDir: config.DATA_DIR, poolSize: 2 })
  const started = Date.now()
  try {
    const orgs = await seedData(database, {
      ...n,
      hashPassword: (p) => hashPassword(p, config.SCRYPT_LOG_N),
      onProgress: (done) => {
        if (!values.json && done % 10_000 === 0) console.error(`  … ${done} tasks`)
      },
    })
    if (values.json) {
      console.log(JSON.stringify(orgs.map((o) => ({ id: o.id, name: o.name, users: o.users, projects: o.projectIds.length, tasks: o.taskIds.length })), null, 2))
      return
    }
    console.log(`seeded ${n.orgs} org(s) × ${n.users} users, ${n.projects} projects, ${n.tasks} tasks (${n.history} edits, ${n.comments} comments each) in ${Date.now() - started} ms`)
    for (const o of orgs) {
      console.log(`\n${o.name} (${o.id})`)
      for (const u of o.users) console.log(`  ${u.role.padEnd(6)} ${u.email}  password: ${u.password}`)
    }
  } finally {
    await database.close()
  }
}

main().catch((err) => {
  console.error(`seed failed: ${err instanceof Error ? err.message : String(err)}`)
  process.exitCode = 1
})
