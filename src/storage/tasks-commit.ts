/**
 * The write side of the op log: each commit is ONE statement (data-modifying CTEs
 * run atomically), so a commit is one round trip. Several tasks' commits share a
 * statement (group commit), and a hot task's queued ops commit as one chain of
 * consecutive revs: the snapshot is written once, at the chain's last rev, every
 * rev gets its op-log row and events. The op-log row carries the rev's history
 * entry (`changes`) and its (clientId, seq) record (`digest`, under the unique
 * task_ops_client_seq_key). The version check `tasks.rev = prev_rev` (the chain's
 * first) under a row lock, plus the task_ops primary key, make sure two instances
 * never commit the same rev; (clientId, seq) already recorded (on an op-log row or
 * in client_mutations) is reported, not re-applied, and keeps its whole chain from
 * being written. The search vectors are not computed here: the task goes into
 * task_search_stale for the search indexer (search-index.ts). Pull's change_xid is
 * in task_changes, beside the row: no column of `tasks` an index covers changes in
 * a steady edit, so its update is HOT (no entry in any of its 7 indexes).
 */
import { sql, type SQL } from 'drizzle-orm'
import { PgDialect } from 'drizzle-orm/pg-core'
import type { Database, Executor } from './db.js'
import type { CommitOutcome, CommitRow, MutationRecord } from './task-store.js'

const commitKey = (orgId: string, taskId: string): string => `${orgId}:${taskId}`

const recordset = sql`x(org_id uuid, task_id uuid, prev_rev int, rev int, content jsonb, clock jsonb,
  project_id uuid, status text, priority int, assignee_id uuid, deleted boolean, at timestamptz,
  user_id uuid, device_id uuid, client_id uuid, seq bigint, digest text, op jsonb, changes jsonb, conflicts jsonb, tombstone boolean)`

/**
 * The statement's parameter: one record per row. Only the row at a task's last rev
 * writes the snapshot (`upd`), so the others of a chain (a run of one task's rows in
 * rev order) carry no snapshot fields (left out: null in the recordset): a hot
 * task's chain of N revs sends and parses one copy of the task, not N.
 */
function payload(rows: CommitRow[]): string {
  return JSON.stringify(
    rows.map((r, i) => {
      const next = rows[i + 1]
      const c = next === undefined || next.taskId !== r.taskId || next.orgId !== r.orgId ? r.content : undefined
      return {
        org_id: r.orgId,
        task_id: r.taskId,
        prev_rev: r.prevRev,
        rev: r.rev,
        content: c,
        clock: c && r.clock,
        project_id: c?.projectId,
        status: c?.status,
        priority: c?.priority,
        assignee_id: c?.assigneeId,
        deleted: c?.deleted,
        at: r.at,
        user_id: r.userId,
        device_id: r.deviceId,
        client_id: r.clientId,
        seq: r.seq,
        digest: r.digest,
        op: r.op,
        changes: r.changes,
        conflicts: r.conflicts.map((c) => ({
          id: c.id,
          field: c.field,
          committed: c.committed,
          incoming: c.incoming,
          committed_rev: c.committedRev,
        })),
        tombstone: r.tombstone,
      }
    }),
  )
}

// The rows written beside the snapshot, shared by op commits and creates: `w` is
// the set of rows whose snapshot write succeeded. `ins_ev` is the outbox: the
// events of the commit (task.*, conflict.created) are in the same statement, so a
// commit that did not happen emits nothing and one that did always emits.
const sideWrites = (kind: 'op' | 'create') => sql`
  ins_stale as (
    insert into task_search_stale (org_id, task_id)
    select distinct org_id, task_id from w
    on conflict (org_id, task_id) do nothing),
  ins_op as (
    insert into task_ops (org_id, task_id, rev, op, user_id, device_id, client_id, seq, committed_at, digest, changes)
    select org_id, task_id, rev, op, user_id, device_id, client_id, seq, at, digest, changes from w),
  ins_conf as (
    insert into conflicts (org_id, id, task_id, field, committed_value, incoming_value, committed_rev, incoming_rev, incoming_user_id, created_at)
    select w.org_id, c.id, w.task_id, c.field, c.committed, c.incoming, c.committed_rev, w.rev, w.user_id, w.at
    from w cross join lateral jsonb_to_recordset(w.conflicts) as c(id uuid, field text, committed jsonb, incoming jsonb, committed_rev int)),
  ins_tomb as (
    insert into tombstones (org_id, kind, id, task_id, rev, deleted_at)
    select org_id, 'task', task_id, task_id, rev, at from w where tombstone
    on conflict (org_id, kind, id) do nothing),
  ins_ev as (
    insert into events (org_id, type, task_id, rev, actor_id, at, change)
    select org_id, type, task_id, rev, actor_id, at, change from (
      select org_id, ${kind === 'create' ? sql`'task.created'` : sql`case when tombstone then 'task.deleted' else 'task.updated' end`} as type,
        task_id, rev, user_id as actor_id, at, jsonb_build_object('fields', changes) as change, 0 as o from w
      union all
      select w.org_id, 'conflict.created', w.task_id, w.rev, w.user_id, w.at, jsonb_build_object('conflict', c), 1
      from w cross join lateral jsonb_array_elements(w.conflicts) as c) e
    -- A chain's events take their seq in rev order, each rev's update before its conflicts.
    order by rev, o)`

interface OutcomeRow {
  r: 'ok' | 'dup'
  org_id: string
  task_id: string
  /** The duplicate row's rev (null on 'ok': every row of the task's chain was written). */
  rev: number | null
  m_client_id: string | null
  m_seq: string | number | null
  m_kind: MutationRecord['kind'] | null
  m_task_id: string | null
  m_rev: number | null
  m_comment_id: string | null
  m_digest: string | null
}

/**
 * One outcome per written row, in their order: the statement answers the committed tasks
 * (all of their rows) and the duplicate rows; any other row was `lost`.
 */
function toOutcomes(rows: CommitRow[], result: OutcomeRow[]): CommitOutcome[] {
  const byKey = new Map<string, CommitOutcome>()
  for (const r of result) {
    if (r.r === 'ok') byKey.set(commitKey(r.org_id, r.task_id), { kind: 'committed' })
    else {
      const record: MutationRecord = {
        clientId: r.m_client_id!,
        seq: Number(r.m_seq),
        orgId: r.org_id,
        kind: r.m_kind!,
        taskId: r.m_task_id!,
        rev: r.m_rev === null ? null : Number(r.m_rev),
        commentId: r.m_comment_id,
        digest: r.m_digest,
      }
      byKey.set(`${commitKey(r.org_id, r.task_id)}:${r.rev}`, { kind: 'duplicate', record })
    }
  }
  return rows.map((row) => {
    const key = commitKey(row.orgId, row.taskId)
    return byKey.get(key) ?? byKey.get(`${key}:${row.rev}`) ?? { kind: 'lost' }
  })
}

// The recorded mutations among the rows' (clientId, seq): on an op-log row (kind
// `create` at rev 1, `op` after) or in client_mutations (comments, no-op acks, the
// records of trimmed rows). A lateral lookup per row, so each stays a unique-index
// probe however large the tables grow (`limit 1` keeps the planner from flattening it
// into a hash join over a whole table).
const dupOf = sql`
  select v.org_id, v.task_id, v.rev, v.client_id as m_client_id, v.seq as m_seq, m.kind as m_kind,
    m.task_id as m_task_id, m.rev as m_rev, m.comment_id as m_comment_id, m.digest as m_digest
  from v cross join lateral (
    (select case when o.rev = 1 then 'create' else 'op' end as kind, o.task_id, o.rev, null::uuid as comment_id, o.digest
     from task_ops o where o.org_id = v.org_id and o.client_id = v.client_id and o.seq = v.seq limit 1)
    union all
    (select c.kind, c.task_id, c.rev, c.comment_id, c.digest
     from client_mutations c where c.org_id = v.org_id and c.client_id = v.client_id and c.seq = v.seq limit 1)
    limit 1) m`

/**
 * Commits ops in one statement: rows of distinct tasks, or of one task several
 * consecutive revs in rev order (a chain, written whole or not at all). One outcome
 * per row: `duplicate` for a recorded (clientId, seq), `lost` for a row not written
 * (its task moved on, or another row of its chain is a duplicate). Rows are locked
 * in key order so two instances' batches cannot deadlock.
 */
export async function commitOps(database: Database, rows: CommitRow[], exec?: Executor): Promise<CommitOutcome[]> {
  return toOutcomes(rows, await runPrepared<OutcomeRow>(database, commitOpsStatement(rows), exec))
}

const dialect = new PgDialect()

/**
 * Runs a commit statement as a named prepared statement on postgres.js: its text
 * depends only on the shape of the commit, and planning this CTE chain cost as much
 * as executing it (measured: 30–120% more commits/s with it). It runs on the commit
 * connections (db.ts `commitQuery`), never queued behind the pool's reads. Inside a
 * transaction, and on PGlite, it runs through drizzle as usual.
 */
async function runPrepared<T>(database: Database, statement: SQL, exec?: Executor): Promise<T[]> {
  if (exec || !database.commitQuery) return database.rows<T>(statement, exec)
  const q = dialect.sqlToQuery(statement)
  return database.commitQuery<T>(q.sql, q.params)
}

/** The statement of commitOps (exported to EXPLAIN it). */
export function commitOpsStatement(rows: CommitRow[]): SQL {
  return sql`
    with v as materialized (select * from jsonb_to_recordset(${payload(rows)}::jsonb) as ${recordset}),
    dup as materialized (${dupOf}),
    chain as materialized (select org_id, task_id, min(prev_rev) as prev_rev, max(rev) as rev from v group by org_id, task_id),
    locked as materialized (
      select t.org_id, t.id from tasks t join chain c on t.org_id = c.org_id and t.id = c.task_id and t.rev = c.prev_rev
      where not exists (select 1 from dup where dup.org_id = c.org_id and dup.task_id = c.task_id)
      order by t.org_id, t.id for update of t),
    upd as (
      update tasks t set rev = v.rev, content = v.content, clock = v.clock, project_id = v.project_id,
        status = v.status, priority = v.priority, assignee_id = v.assignee_id, deleted = v.deleted,
        updated_at = v.at, updated_by = v.user_id
      from v join chain c on c.org_id = v.org_id and c.task_id = v.task_id and c.rev = v.rev
        join locked l on l.org_id = v.org_id and l.id = v.task_id
      where t.org_id = v.org_id and t.id = v.task_id and t.rev = c.prev_rev
      returning t.org_id, t.id),
    chg as (
      update task_changes x set change_xid = pg_current_xact_id()
      from upd where x.org_id = upd.org_id and x.task_id = upd.id),
    w as materialized (select v.* from v join upd on upd.org_id = v.org_id and upd.id = v.task_id),
    ${sideWrites('op')}
    select 'ok' as r, org_id, id as task_id, null::int as rev, null::uuid as m_client_id, null::bigint as m_seq, null::text as m_kind,
      null::uuid as m_task_id, null::int as m_rev, null::uuid as m_comment_id, null::text as m_digest from upd
    union all
    select 'dup', org_id, task_id, rev, m_client_id, m_seq, m_kind, m_task_id, m_rev, m_comment_id, m_digest from dup`
}

/**
 * Creates a task (rev 1) in one statement: `committed`, `duplicate` when its
 * (clientId, seq) was already recorded, `lost` when the org has a task with that id.
 */
export async function commitCreate(database: Database, row: CommitRow): Promise<CommitOutcome> {
  const result = await runPrepared<OutcomeRow>(database, sql`
    with v as materialized (select * from jsonb_to_recordset(${payload([row])}::jsonb) as ${recordset}),
    dup as materialized (${dupOf}),
    ins as (
      insert into tasks (org_id, id, rev, content, clock, project_id, status, priority, assignee_id, deleted,
        created_at, created_by, updated_at, updated_by)
      select org_id, task_id, rev, content, clock, project_id, status, priority, assignee_id, deleted,
        at, user_id, at, user_id from v
      where not exists (select 1 from dup)
      on conflict (org_id, id) do nothing
      returning org_id, id),
    chg as (
      insert into task_changes (org_id, task_id) select org_id, id from ins
      on conflict (org_id, task_id) do update set change_xid = excluded.change_xid),
    w as materialized (select v.* from v join ins on ins.org_id = v.org_id and ins.id = v.task_id),
    ${sideWrites('create')}
    select 'ok' as r, org_id, id as task_id, null::int as rev, null::uuid as m_client_id, null::bigint as m_seq, null::text as m_kind,
      null::uuid as m_task_id, null::int as m_rev, null::uuid as m_comment_id, null::text as m_digest from ins
    union all
    select 'dup', org_id, task_id, rev, m_client_id, m_seq, m_kind, m_task_id, m_rev, m_comment_id, m_digest from dup`)
  return toOutcomes([row], result)[0]
}
