/**
 * What a commit statement costs PostgreSQL, per op: the same fixed work (T tasks,
 * the load's steady op — one title character inserted or deleted around 40 chars
 * plus a custom field set — committed as group commits of B rows through
 * `commitOps`) is run on several fresh databases that differ by one schema change
 * each (a variant), in turns (round robin, so noise spreads evenly), on one
 * connection each, and the CPU of that connection's backend (from /proc) is divided
 * by the ops committed. The table of medians is the breakdown of a commit's cost.
 *
 *   npx tsx load/commit-cost-bench.ts [--tasks 100] [--batch 25] [--statements 100] [--rounds 5] [--title 40] [--reindex 0] [--variants base,…]
 *   env BENCH_PG_URL (admin URL, default postgres://postgres@127.0.0.1:5432/postgres)
 *
 * Variants: `base` (the schema and statement as they are) and the ones in VARIANTS.
 */
import { randomBytes, randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { parseArgs } from 'node:util'
import postgres from 'postgres'
import { sql } from 'drizzle-orm'
import { PgDialect } from 'drizzle-orm/pg-core'
import { contentFromInit, DEFAULT_LIMITS, historyChanges, increment, taskType, type TaskContent, type TaskOp } from '../src/domain/index.js'
import { mutationDigest } from '../src/sequencer/digest.js'
import { openDatabase, type Database } from '../src/storage/index.js'
import { commitCreate, commitOpsStatement } from '../src/storage/tasks-commit.js'
import type { CommitRow } from '../src/storage/task-store.js'

/** CPU seconds a process has run, to the nanosecond (/proc/PID/schedstat; /proc/PID/stat counts 10 ms ticks). */
function cpuSeconds(pid: number): number {
  return Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]) / 1e9
}

/**
 * What a commit costs without the thing each variant removes: `ddl` runs on its
 * database after the migrations, `cut` names CTEs of the commit statement left out
 * (each replaced by an empty one: the write is not done), `replace` a text of it.
 */
const VARIANTS: Record<string, { ddl?: string; cut?: string[]; replace?: [string, string][] }> = {
  base: {},
  'history-without-id': { ddl: 'alter table task_history drop column id' },
  'json-payload': { replace: [['jsonb_to_recordset($1::jsonb)', 'json_to_recordset($1::json)']] },
  // The commit as before migration 0017 (main at 0c73774), for an A/B in one process: the
  // op-log row without its record and history entry, a task_history row and a
  // client_mutations row beside it, the duplicate check on client_mutations only, and
  // task_ops' index on committed_at instead of the two new ones.
  'as-main': {
    ddl: 'drop index task_ops_client_seq_key; drop index task_ops_org_at_idx; create index task_ops_committed_idx on task_ops (committed_at)',
    replace: [
      [
        'insert into task_ops (org_id, task_id, rev, op, user_id, device_id, client_id, seq, committed_at, digest, changes)\n    select org_id, task_id, rev, op, user_id, device_id, client_id, seq, at, digest, changes from w),',
        `insert into task_ops (org_id, task_id, rev, op, user_id, device_id, client_id, seq, committed_at)
    select org_id, task_id, rev, op, user_id, device_id, client_id, seq, at from w),
  ins_hist as (
    insert into task_history (org_id, task_id, rev, user_id, device_id, changes, at)
    select org_id, task_id, rev, user_id, device_id, changes, at from w),
  ins_cm as (
    insert into client_mutations (client_id, seq, org_id, kind, task_id, rev, digest, committed_at)
    select client_id, seq, org_id, 'op', task_id, rev, digest, at from w where client_id is not null),`,
      ],
      [
        `(select case when o.rev = 1 then 'create' else 'op' end as kind, o.task_id, o.rev, null::uuid as comment_id, o.digest
     from task_ops o where o.org_id = v.org_id and o.client_id = v.client_id and o.seq = v.seq limit 1)
    union all
    (select`,
        'select',
      ],
      ['limit 1)\n    limit 1) m', 'limit 1) m'],
    ],
  },
  'no-search-vectors': { ddl: 'alter table tasks drop column search, drop column search_head' },
  'no-search-head': { ddl: 'alter table tasks drop column search_head' },
  // The task's change_xid and search staleness on the row as before migration 0018 (main at
  // a625b1a), for an A/B in one process: both indexed, a trigger setting change_xid, no fillfactor.
  'before-0018': {
    ddl: `alter table tasks set (fillfactor = 100);
      alter table tasks add column change_xid xid8 not null default pg_current_xact_id(), add column search_stale boolean not null default true;
      create index tasks_change_idx on tasks (org_id, change_xid, id);
      create index tasks_search_stale_idx on tasks (org_id) where search_stale;
      create trigger tasks_touch_change_xid before update on tasks for each row when (new.search_stale or not old.search_stale) execute function tasksync_touch_change_xid()`,
    replace: [
      ['updated_at = v.at, updated_by = v.user_id\n', 'updated_at = v.at, updated_by = v.user_id, search_stale = true\n'],
      ['update task_changes x set change_xid = pg_current_xact_id()\n      from upd where x.org_id = upd.org_id and x.task_id = upd.id', 'select 1'],
      ['insert into task_search_stale (org_id, task_id)\n    select distinct org_id, task_id from w\n    on conflict (org_id, task_id) do nothing', 'select 1'],
    ],
  },
  'no-filter-indexes': { ddl: 'drop index tasks_project_idx; drop index tasks_status_idx; drop index tasks_assignee_idx' },
  'no-task-ops': { cut: ['ins_op'] },
  // task_changes written by an upsert (a row missing there would be written) instead of an update.
  'changes-upsert': {
    replace: [[
      'update task_changes x set change_xid = pg_current_xact_id()\n      from upd where x.org_id = upd.org_id and x.task_id = upd.id',
      'insert into task_changes (org_id, task_id) select org_id, id from upd\n      on conflict (org_id, task_id) do update set change_xid = excluded.change_xid',
    ]],
  },
  // What the two side tables cost the commit: neither task_changes nor task_search_stale written.
  'no-side-tables': {
    replace: [
      ['update task_changes x set change_xid = pg_current_xact_id()\n      from upd where x.org_id = upd.org_id and x.task_id = upd.id', 'select 1'],
      ['insert into task_search_stale (org_id, task_id)\n    select distinct org_id, task_id from w\n    on conflict (org_id, task_id) do nothing', 'select 1'],
    ],
  },
  // The tasks update without its room for HOT (fillfactor 100, as the table was before 0018).
  'no-fillfactor': { ddl: 'alter table tasks set (fillfactor = 100)' },
  'no-events': { cut: ['ins_ev'] },
  'no-conflicts-tombstones': { cut: ['ins_conf', 'ins_tomb'] },
  'no-side-writes': { cut: ['ins_op', 'ins_conf', 'ins_tomb', 'ins_ev'] },
  // The op-log row without its (clientId, seq) unique index (the record's index entry).
  // The duplicate check probing the op log only (what the second probe, into client_mutations, costs).
  'dup-oplog-only': {
    replace: [
      [
        `limit 1)
    union all
    (select c.kind, c.task_id, c.rev, c.comment_id, c.digest
     from client_mutations c where c.org_id = v.org_id and c.client_id = v.client_id and c.seq = v.seq limit 1)
    limit 1) m`,
        'limit 1)) m',
      ],
    ],
  },
  'no-client-seq-index': { ddl: 'drop index task_ops_client_seq_key' },
}

const dialect = new PgDialect()

/** The commit statement of `rows` with the variant's CTEs cut, run as commitOps runs it (named prepared). */
async function commitVariant(run: Run, rows: CommitRow[]): Promise<number> {
  // Every variant, base too, runs on the measured connection (commitOps itself would take one of
  // the database's commit connections, another backend).
  const { cut = [], replace } = VARIANTS[run.name]
  let { sql: text, params } = dialect.sqlToQuery(commitOpsStatement(rows))
  for (const name of cut) {
    const re = new RegExp(`\\b${name} as \\(([\\s\\S]*?)\\)(?=,\\s*ins_\\w+ as \\(|\\s*select 'ok')`)
    const m = re.exec(text)
    if (!m) throw new Error(`no CTE ${name} in the commit statement`)
    // A placeholder of the cut text stays used, so the parameters keep their numbers.
    const kept = [...m[1].matchAll(/\$\d+/g)].map((p) => `${p[0]}::text`)
    text = text.replace(re, `${name} as (select ${kept.length ? kept.join(', ') : '1'})`)
  }
  for (const [from, to] of replace ?? []) {
    if (!text.includes(from)) throw new Error(`no ${from} in the commit statement`)
    text = text.replace(from, to)
  }
  const client = (run.database.db as unknown as { $client: { unsafe: (q: string, p: unknown[], o: object) => Promise<{ r: string }[]> } }).$client
  return (await client.unsafe(text, params, { prepare: true })).filter((r) => r.r === 'ok').length
}

const { values } = parseArgs({
  options: {
    tasks: { type: 'string', default: '100' },
    batch: { type: 'string', default: '25' },
    statements: { type: 'string', default: '100' },
    rounds: { type: 'string', default: '5' },
    variants: { type: 'string', default: Object.keys(VARIANTS).join(',') },
    // Title length the ops keep the tasks at (the steady scenario: 40; the hot one grows to thousands).
    title: { type: 'string', default: '40' },
    // Runs the search indexer (src/storage/search-index.ts) on the same connection every N statements
    // (0: never), so its CPU counts: at 2,400 ops/s and one round a second, 96 statements of 25.
    reindex: { type: 'string', default: '0' },
  },
})
const taskCount = Number(values.tasks)
const titleLength = Number(values.title)
const reindexEvery = Number(values.reindex)
// Imported only when asked for: the bench also runs on trees from before the indexer.
const reindex = reindexEvery > 0 ? ((await import('../src/storage/search-index.js')) as { reindexAll: (d: Database) => Promise<number> }).reindexAll : null
const batch = Number(values.batch)
const statements = Number(values.statements)
const rounds = Number(values.rounds)
const names = values.variants.split(',')
for (const n of names) if (!(n in VARIANTS)) throw new Error(`unknown variant ${n}: ${Object.keys(VARIANTS).join(', ')}`)
const adminUrl = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'
const admin = postgres(adminUrl, { max: 1, onnotice: () => {} })
const type = taskType

interface Writer {
  taskId: string
  userId: string
  deviceId: string
  clientId: string
  seq: number
  rev: number
  content: TaskContent
  clock: Record<string, number>
}

interface Run {
  name: string
  dbName: string
  database: Database
  backendPid: number
  orgId: string
  writers: Writer[]
  /** Core-ms per op of each round. */
  samples: number[]
}

/** The steady scenario's op (load/worker.ts nextOp). */
function loadOp(content: TaskContent, i: number): TaskOp {
  const len = [...content.title].length
  const pos = (i * 7919) % (len + 1)
  const title = len < titleLength ? (pos > 0 ? [pos, 'x'] : ['x']) : pos < len ? (pos > 0 ? [pos, { d: 1 }] : [{ d: 1 }]) : [{ d: 1 }]
  return { title, customFields: { lt: { set: 1_700_000_000_000 + i } } } as TaskOp
}

/** `load task i`, then words up to the title length. */
function initialTitle(i: number): string {
  let t = `load task ${i}`
  for (let k = 0; t.length < titleLength; k++) t += ` word${(k * 31 + i) % 997}`
  return t.slice(0, Math.max(titleLength, `load task ${i}`.length))
}

function opRow(orgId: string, w: Writer, i: number): CommitRow {
  const op = type.normalize(loadOp(w.content, i))
  const content = type.apply(w.content, op)
  const row: CommitRow = {
    orgId,
    taskId: w.taskId,
    prevRev: w.rev,
    rev: w.rev + 1,
    content,
    clock: increment(w.clock, w.deviceId),
    at: new Date().toISOString(),
    userId: w.userId,
    deviceId: w.deviceId,
    clientId: w.clientId,
    seq: ++w.seq,
    digest: mutationDigest({ kind: 'op', taskId: w.taskId, op }),
    op,
    changes: historyChanges(w.content, content),
    conflicts: [],
    tombstone: false,
  }
  w.rev = row.rev
  w.content = content
  w.clock = row.clock
  return row
}

async function setUp(name: string): Promise<Run> {
  const dbName = `tasksync_cost_${randomBytes(4).toString('hex')}`
  await admin.unsafe(`create database ${dbName}`)
  const url = new URL(adminUrl)
  url.pathname = '/' + dbName
  const database = await openDatabase({ databaseUrl: url.toString(), dataDir: '/tmp', poolSize: 1 })
  try {
    return await fill(name, dbName, database)
  } catch (err) {
    await database.close()
    await admin.unsafe(`drop database if exists ${dbName} with (force)`)
    throw err
  }
}

async function fill(name: string, dbName: string, database: Database): Promise<Run> {
  const ddl = VARIANTS[name].ddl
  if (ddl) await database.rows(sql.raw(ddl))
  const orgId = randomUUID()
  await database.rows(sql`insert into organizations (id, name) values (${orgId}::uuid, 'bench')`)
  const writers: Writer[] = []
  for (let i = 0; i < taskCount; i++) {
    const w: Writer = { taskId: randomUUID(), userId: randomUUID(), deviceId: randomUUID(), clientId: randomUUID(), seq: 0, rev: 0, content: contentFromInit({ title: initialTitle(i) }, DEFAULT_LIMITS), clock: {} }
    const create: CommitRow = {
      orgId, taskId: w.taskId, prevRev: 0, rev: 1, content: w.content, clock: increment({}, w.deviceId), at: new Date().toISOString(),
      userId: w.userId, deviceId: w.deviceId, clientId: w.clientId, seq: ++w.seq, digest: mutationDigest({ kind: 'create', taskId: w.taskId, task: w.content }),
      op: {} as TaskOp, changes: historyChanges(type.create(), w.content), conflicts: [], tombstone: false,
    }
    const outcome = await commitCreate(database, create)
    if (outcome.kind !== 'committed') throw new Error(`create: ${outcome.kind}`)
    w.rev = 1
    w.clock = create.clock
    writers.push(w)
  }
  const [{ pid }] = await database.rows<{ pid: number }>(sql`select pg_backend_pid() as pid`)
  return { name, dbName, database, backendPid: Number(pid), orgId, writers, samples: [] }
}

/** `statements` group commits of `batch` rows, the tasks in turn; core-ms per op of the backend. */
async function round(run: Run, r: number): Promise<number> {
  const before = cpuSeconds(run.backendPid)
  let next = 0
  for (let s = 0; s < statements; s++) {
    const rows: CommitRow[] = []
    for (let k = 0; k < batch; k++) rows.push(opRow(run.orgId, run.writers[(next++) % taskCount], (r + 1) * statements * batch + s * batch + k))
    rows.sort((a, b) => (a.taskId < b.taskId ? -1 : 1))
    if ((await commitVariant(run, rows)) !== new Set(rows.map((x) => x.taskId)).size) throw new Error(`${run.name}: a task was not committed`)
    if (reindex && (s + 1) % reindexEvery === 0) await reindex(run.database)
  }
  return ((cpuSeconds(run.backendPid) - before) * 1000) / (statements * batch)
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}

const runs: Run[] = []
try {
  for (const n of names) runs.push(await setUp(n))
  for (const run of runs) await round(run, -1) // warm-up: prepares the statement, fills the caches
  const loads: number[] = []
  for (let r = 0; r < rounds; r++) {
    for (const run of r % 2 ? [...runs].reverse() : runs) run.samples.push(await round(run, r))
    loads.push(loadavg()[0])
  }
  const base = runs.find((r) => r.name === 'base')
  console.log(`commit cost: ${taskCount} tasks, titles ~${titleLength} chars, reindex every ${reindexEvery || '—'} statements, ${rounds} rounds × ${statements} statements × ${batch} rows; load average ${loads.map((l) => l.toFixed(1)).join(', ')}`)
  console.log('variant                      PostgreSQL core-ms/op (median)  vs base   samples')
  for (const run of runs) {
    const m = median(run.samples)
    const delta = base && run !== base ? `${(m - median(base.samples) >= 0 ? '+' : '')}${(m - median(base.samples)).toFixed(3)}` : ''
    console.log(`${run.name.padEnd(28)} ${m.toFixed(3).padStart(10)}                        ${delta.padStart(7)}   ${run.samples.map((x) => x.toFixed(3)).join(' ')}`)
  }
} finally {
  for (const run of runs) {
    await run.database.close()
    await admin.unsafe(`drop database if exists ${run.dbName} with (force)`)
  }
  await admin.end()
}
