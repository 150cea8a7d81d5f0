/**
 * The CLIs as an operator runs them (child processes on a real database): seed
 * writes data the server serves and logs in with, consistent with what the
 * sequencer writes; housekeeping --dry-run reports without changing anything,
 * then a real run purges.
 */
import t from 'tap'
import { execFile } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomUUID } from 'node:crypto'
import { sql } from 'drizzle-orm'
import { createTestDatabaseUrl } from '../helpers/db.js'
import { startTestApp, api } from '../helpers/app.js'
import { openDatabase } from '../../src/storage/db.js'
import { makeTaskType, DEFAULT_LIMITS, type TaskOp } from '../../src/domain/index.js'

const url = await createTestDatabaseUrl(t)
const env = { ...process.env, DATABASE_URL: url, DATA_DIR: mkdtempSync(join(tmpdir(), 'tasksync-cli-')), SCRYPT_LOG_N: '10', LOG_LEVEL: 'silent', TOMBSTONE_TTL_DAYS: '30' }

function cli(script: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', `src/cli/${script}.ts`, ...args], { env, timeout: 60_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    )
  })
}

t.test('seed writes what the sequencer would, and its credentials log in', async (t) => {
  const res = await cli('seed', ['--orgs', '1', '--users', '3', '--projects', '2', '--tasks', '120', '--history', '3', '--comments', '1', '--json'])
  t.equal(res.code, 0, res.stderr)
  const [org] = JSON.parse(res.stdout)
  t.same([org.users.length, org.projects, org.tasks], [3, 2, 120])
  t.same(org.users.map((u: any) => u.role), ['owner', 'admin', 'member'])

  const app = await startTestApp(t, { databaseUrl: url })
  const db = app.app.database
  const count = async (table: string) => Number((await db.rows<{ n: string }>(sql`select count(*) as n from ${sql.raw(table)} where org_id = ${org.id}::uuid`))[0].n)
  t.same([await count('tasks'), await count('task_ops'), await count('task_history'), await count('comments')], [120, 480, 480, 120])

  const type = makeTaskType(DEFAULT_LIMITS)
  const tasks = await db.rows<{ id: string; rev: number; content: any; clock: Record<string, number> }>(
    sql`select id, rev, content, clock from tasks where org_id = ${org.id}::uuid order by id limit 20`,
  )
  for (const task of tasks) {
    const ops = await db.rows<{ rev: number; op: TaskOp }>(sql`select rev, op from task_ops where org_id = ${org.id}::uuid and task_id = ${task.id}::uuid order by rev`)
    let content = type.create()
    for (const o of ops) content = type.apply(content, o.op)
    t.same(content, task.content, `replaying ${task.id.slice(0, 8)} from create() gives its snapshot`)
    t.equal(Object.values(task.clock).reduce((x, y) => x + y, 0), Number(task.rev), 'its clock counts every rev')
  }

  const login = await api(app.url).post('/api/auth/login', { email: org.users[2].email, password: org.users[2].password, device: { name: 'cli test', platform: 'test' } })
  t.equal(login.status, 200, 'a seeded member logs in')
  const pull = await api(app.url, login.body.accessToken).get('/api/sync/pull')
  t.same([pull.body.tasks.length, pull.body.comments.length, pull.body.hasMore], [120, 120, false], 'and pulls the seeded data')

  const bad = await cli('seed', ['--tasks', 'many'])
  t.equal(bad.code, 1)
  t.match(bad.stderr, /--tasks must be a non-negative integer/)
})

t.test('housekeeping --dry-run reports exactly, then a run purges', async (t) => {
  const app = await startTestApp(t, { databaseUrl: url })
  const [org] = (await app.app.database.rows<{ id: string }>(sql`select id from organizations limit 1`))
  const [user] = await app.app.database.rows<{ id: string; role: string }>(sql`select id, role from users where org_id = ${org.id}::uuid and role = 'owner'`)
  const principal = { orgId: org.id, userId: user.id, deviceId: randomUUID(), role: 'owner' as const }
  const taskId = randomUUID()
  await app.app.sequencer.create({ principal, taskId, clientId: null, seq: null, init: { title: 'old news' } })
  await app.app.sequencer.submit({ principal, taskId, clientId: null, seq: null, baseRev: 1, op: { delete: true } })
  // The deletion happened 31 days ago (TTL is 30).
  await app.app.database.rows(sql`update tombstones set deleted_at = now() - interval '31 days' where id = ${taskId}::uuid`)
  await app.close()

  const dry = await cli('housekeeping', ['--dry-run'])
  t.equal(dry.code, 0, dry.stderr)
  t.match(dry.stdout, /dry run \(rolled back\)/)
  t.match(dry.stdout, /would purge 1 tasks \(2 ops\), 0 comments, 1 tombstones/)
  const db = await openDatabase({ databaseUrl: url, dataDir: '/tmp', migrate: false, poolSize: 1 })
  t.teardown(() => db.close())
  const exists = async () => (await db.rows(sql`select 1 from tasks where id = ${taskId}::uuid`)).length === 1
  t.ok(await exists(), 'still there after a dry run')

  const real = await cli('housekeeping', ['--json'])
  t.equal(real.code, 0, real.stderr)
  const report = JSON.parse(real.stdout)
  t.same([report.ran, report.dryRun, report.purged.tasks, report.purged.ops, report.purged.tombstones], [true, false, 1, 2, 1])
  t.match(report.purged.horizonXid, /^\d+$/, 'the horizon moved')
  t.notOk(await exists(), 'purged')
})
