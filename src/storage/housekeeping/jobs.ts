/**
 * The housekeeping jobs, each one statement or two on a transaction:
 * - purge deletions older than the tombstone TTL (the task row, its op log and
 *   comments; the comment rows; the tombstone rows) and move the horizon past them,
 *   so a device whose cursor predates them is told to reset;
 * - trim the sync log;
 * - trim each task's op log to its replay window.
 * History and conflicts are kept: they are the audit trail. A deleted op-log row's
 * history entry and (clientId, seq) record move to task_history and client_mutations
 * in the same statement (keepRecords).
 */
import { sql } from 'drizzle-orm'
import type { Database, Executor } from '../db.js'
import { advanceHorizon } from '../sync/horizon.js'
import { parseSnapshot } from '../sync/snapshot.js'
import { iso } from '../tasks.js'
import { writeCheckpoint } from '../time-travel.js'

export interface PurgeCounts {
  tasks: number
  ops: number
  comments: number
  tombstones: number
  /** The horizon (xid8 as text) after a run that purged something. */
  horizonXid: string | null
}

/**
 * CTEs that keep what deleted op-log rows (the CTE `rows`, returning task_ops.*)
 * carried beyond the log: their history entries move to task_history (the audit
 * trail is never trimmed) and their (clientId, seq) records to client_mutations, with
 * their committing transaction (pull's lastSeq), so a resend still answers its ack.
 */
const keepRecords = (rows: 'o' | 'x') => {
  const from = sql.raw(rows)
  return sql`kept_history as (
      insert into task_history (org_id, task_id, rev, user_id, device_id, changes, at)
      select org_id, task_id, rev, user_id, device_id, changes, committed_at from ${from} where changes is not null
      on conflict (org_id, task_id, rev) do nothing),
    kept_records as (
      insert into client_mutations (client_id, seq, org_id, kind, task_id, rev, digest, committed_at, change_xid)
      select client_id, seq, org_id, case when rev = 1 then 'create' else 'op' end, task_id, rev, digest, committed_at, change_xid
      from ${from} where client_id is not null
      on conflict (org_id, client_id, seq) do nothing)`
}

type Counted = { tasks?: string | number; ops?: string | number; comments?: string | number; tombstones?: string | number; xid: string | null }

/** Purges deletions made before `cutoff` and advances the horizon to the newest transaction purged. */
export async function purgeTombstones(database: Database, tx: Executor, cutoff: Date): Promise<PurgeCounts> {
  const at = cutoff.toISOString()
  // A deleted task goes with its op log, its comments and every tombstone under it.
  const [t] = await database.rows<Counted>(
    sql`with d as (
          delete from tasks x where x.deleted and (x.updated_at < ${at}::timestamptz or exists (
            select 1 from tombstones b where b.org_id = x.org_id and b.kind = 'task' and b.id = x.id and b.deleted_at < ${at}::timestamptz))
          returning x.org_id, x.id),
        -- The task's last change (its tombstone's transaction or later): the horizon passes it.
        ch as (delete from task_changes x using d where x.org_id = d.org_id and x.task_id = d.id returning x.change_xid),
        st as (delete from task_search_stale x using d where x.org_id = d.org_id and x.task_id = d.id returning 1),
        o as (delete from task_ops x using d where x.org_id = d.org_id and x.task_id = d.id returning x.*),
        ${keepRecords('o')},
        k as (delete from task_checkpoints x using d where x.org_id = d.org_id and x.task_id = d.id returning 1),
        c as (delete from comments x using d where x.org_id = d.org_id and x.task_id = d.id returning x.change_xid),
        b as (delete from tombstones x using d where x.org_id = d.org_id
                and ((x.kind = 'task' and x.id = d.id) or (x.kind = 'comment' and x.task_id = d.id)) returning x.change_xid)
        select (select count(*) from d) as tasks, (select count(*) from o) as ops, (select count(*) from c) as comments,
          (select count(*) from b) as tombstones,
          greatest((select max(change_xid) from ch), (select max(change_xid) from c), (select max(change_xid) from b))::text as xid`,
    tx,
  )
  // A deleted comment that still has live replies keeps its tombstone: the thread hangs on it.
  const [c] = await database.rows<Counted>(
    sql`with d as (
          delete from comments x where x.deleted
            and (x.updated_at < ${at}::timestamptz or exists (
              select 1 from tombstones b where b.org_id = x.org_id and b.kind = 'comment' and b.id = x.id and b.deleted_at < ${at}::timestamptz))
            and not exists (select 1 from comments r where r.org_id = x.org_id and r.parent_id = x.id and not r.deleted)
          returning x.org_id, x.id, x.change_xid),
        b as (delete from tombstones x using d where x.org_id = d.org_id and x.kind = 'comment' and x.id = d.id returning x.change_xid)
        select (select count(*) from d) as comments, (select count(*) from b) as tombstones,
          greatest((select max(change_xid) from d), (select max(change_xid) from b))::text as xid`,
    tx,
  )
  // Tombstones whose entity row is already gone.
  const [o] = await database.rows<Counted>(
    sql`with b as (
          delete from tombstones x where x.deleted_at < ${at}::timestamptz
            and not exists (select 1 from tasks t where x.kind = 'task' and t.org_id = x.org_id and t.id = x.id)
            and not exists (select 1 from comments m where x.kind = 'comment' and m.org_id = x.org_id and m.id = x.id)
          returning x.change_xid)
        select count(*) as tombstones, max(change_xid)::text as xid from b`,
    tx,
  )
  const xids = [t.xid, c.xid, o.xid].filter((x): x is string => x !== null).map(BigInt)
  let horizon: bigint | null = null
  if (xids.length) {
    // Taken after the deletes: what is still in progress now was never purged.
    const [now] = await database.rows<{ snap: string }>(sql`select pg_current_snapshot()::text as snap`, tx)
    horizon = (await advanceHorizon(database, xids.reduce((a, b) => (a > b ? a : b)), parseSnapshot(now.snap)!, tx)).xid
  }
  return {
    tasks: Number(t.tasks),
    ops: Number(t.ops),
    comments: Number(t.comments) + Number(c.comments),
    tombstones: Number(t.tombstones) + Number(c.tombstones) + Number(o.tombstones),
    horizonXid: horizon?.toString() ?? null,
  }
}

/** Deletes sync log entries older than `cutoff`; returns how many. */
export async function trimSyncLog(database: Database, tx: Executor, cutoff: Date): Promise<number> {
  const [r] = await database.rows<{ n: string | number }>(
    sql`with d as (delete from sync_log where at < ${cutoff.toISOString()}::timestamptz returning 1) select count(*) as n from d`,
    tx,
  )
  return Number(r.n)
}

/**
 * Keeps the last `keep` ops of every task (the replay window: an op further
 * behind is rev_too_old anyway, a resume further behind gets a snapshot).
 * Before a task's ops are deleted, its snapshot at the newest deleted rev is
 * stored as a checkpoint, so time travel still reaches the revs from there on.
 */
export async function trimOpLog(database: Database, tx: Executor, keep: number): Promise<number> {
  const due = await database.rows<{ org_id: string; id: string; upto: number; created_at: string }>(
    sql`select t.org_id, t.id, t.rev - ${keep}::int as upto, ${iso(sql`t.created_at`)} as created_at from tasks t
        where t.rev > ${keep}::int and exists (
          select 1 from task_ops o where o.org_id = t.org_id and o.task_id = t.id and o.rev <= t.rev - ${keep}::int)`,
    tx,
  )
  let trimmed = 0
  for (const d of due) {
    const upto = Number(d.upto)
    await writeCheckpoint(database, tx, d.org_id, d.id, d.created_at, upto)
    const [r] = await database.rows<{ n: string | number }>(
      sql`with x as (delete from task_ops where org_id = ${d.org_id}::uuid and task_id = ${d.id}::uuid and rev <= ${upto}::int returning *),
          ${keepRecords('x')}
          select count(*) as n from x`,
      tx,
    )
    trimmed += Number(r.n)
  }
  return trimmed
}
