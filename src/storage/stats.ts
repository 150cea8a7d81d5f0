/**
 * The organization's dashboard figures, computed in SQL from the tables the
 * sequencer keeps (tasks, the history entries on task_ops and in task_history, conflicts): nothing is counted twice
 * on the side, so the figures can never drift from the data.
 */
import { sql } from 'drizzle-orm'
import type { Database } from './db.js'
import { iso } from './tasks.js'
import { STATUSES, type Status } from '../domain/types.js'

/** Days covered by the per-day series (today, UTC, included). */
export const STATS_DAYS = 30
/** Overdue tasks listed by name (the count covers them all). */
export const OVERDUE_LISTED = 20

export interface OrgStats {
  generatedAt: string
  days: number
  totals: { tasks: number; open: number; overdue: number }
  byStatus: { status: Status; count: number }[]
  byPriority: { priority: number; count: number }[]
  byAssignee: { assigneeId: string | null; displayName: string | null; count: number }[]
  perDay: { date: string; created: number; completed: number }[]
  overdue: { id: string; title: string; dueAt: string; status: Status; assigneeId: string | null }[]
  conflicts: { open: number; raised: number; settled: number }
}

/** Live tasks whose due date has passed and that are not done or cancelled. */
const overdueWhere = sql`not deleted and status not in ('done', 'cancelled') and content->>'dueAt' is not null and (content->>'dueAt')::timestamptz < now()`

export async function orgStats(database: Database, orgId: string): Promise<OrgStats> {
  const org = sql`${orgId}::uuid`
  const [byStatusRows, byPriorityRows, byAssigneeRows, dayRows, overdueRows, overdueCount, conflictRows, nowRows] = await Promise.all([
    database.rows<{ status: Status; count: number }>(sql`
      select status, count(*)::int as count from tasks where org_id = ${org} and not deleted group by status`),
    database.rows<{ priority: number; count: number }>(sql`
      select priority, count(*)::int as count from tasks where org_id = ${org} and not deleted group by priority`),
    database.rows<{ assignee_id: string | null; display_name: string | null; count: number }>(sql`
      select t.assignee_id, u.display_name, count(*)::int as count
      from tasks t left join users u on u.org_id = t.org_id and u.id = t.assignee_id
      where t.org_id = ${org} and not t.deleted
      group by t.assignee_id, u.display_name order by count desc, u.display_name nulls last`),
    // Events, not states: rev 1 of a task is its creation; a history entry whose status turned to done is a completion.
    database.rows<{ day: string; created: number; completed: number }>(sql`
      with days as (
        select (current_date at time zone 'UTC')::date - g as day from generate_series(0, ${STATS_DAYS - 1}::int) as g
      ), since as (
        select ((current_date at time zone 'UTC')::date - ${STATS_DAYS - 1}::int)::timestamp at time zone 'UTC' as at
      ), entries as (
        select rev, at, changes from task_history where org_id = ${org} and at >= (select at from since)
        union all
        select rev, committed_at, changes from task_ops where org_id = ${org} and committed_at >= (select at from since) and changes is not null
      ), events as (
        select (at at time zone 'UTC')::date as day,
               (rev = 1)::int as created,
               (changes->'status'->>'to' = 'done')::int as completed
        from entries
      )
      select to_char(d.day, 'YYYY-MM-DD') as day, coalesce(sum(e.created), 0)::int as created, coalesce(sum(e.completed), 0)::int as completed
      from days d left join events e on e.day = d.day group by d.day order by d.day`),
    database.rows<{ id: string; title: string; due_at: string; status: Status; assignee_id: string | null }>(sql`
      select id, content->>'title' as title, ${iso(sql`(content->>'dueAt')::timestamptz`)} as due_at, status, assignee_id
      from tasks where org_id = ${org} and ${overdueWhere}
      order by (content->>'dueAt')::timestamptz, id limit ${OVERDUE_LISTED}::int`),
    database.rows<{ count: number }>(sql`select count(*)::int as count from tasks where org_id = ${org} and ${overdueWhere}`),
    database.rows<{ open: number; raised: number; settled: number }>(sql`
      select count(*) filter (where status = 'open')::int as open,
             count(*) filter (where created_at >= now() - make_interval(days => ${STATS_DAYS}::int))::int as raised,
             count(*) filter (where resolved_at >= now() - make_interval(days => ${STATS_DAYS}::int))::int as settled
      from conflicts where org_id = ${org}`),
    database.rows<{ now: string }>(sql`select ${iso(sql`now()`)} as now`),
  ])
  const statusCount = new Map(byStatusRows.map((r) => [r.status, Number(r.count)]))
  const priorityCount = new Map(byPriorityRows.map((r) => [Number(r.priority), Number(r.count)]))
  const byStatus = STATUSES.map((status) => ({ status, count: statusCount.get(status) ?? 0 }))
  const tasks = byStatus.reduce((n, s) => n + s.count, 0)
  const overdue = Number(overdueCount[0]?.count ?? 0)
  return {
    generatedAt: nowRows[0].now,
    days: STATS_DAYS,
    totals: { tasks, open: tasks - (statusCount.get('done') ?? 0) - (statusCount.get('cancelled') ?? 0), overdue },
    byStatus,
    byPriority: [0, 1, 2, 3, 4].map((priority) => ({ priority, count: priorityCount.get(priority) ?? 0 })),
    byAssignee: byAssigneeRows.map((r) => ({ assigneeId: r.assignee_id, displayName: r.display_name, count: Number(r.count) })),
    perDay: dayRows.map((r) => ({ date: r.day, created: Number(r.created), completed: Number(r.completed) })),
    overdue: overdueRows.map((r) => ({ id: r.id, title: r.title, dueAt: r.due_at, status: r.status, assigneeId: r.assignee_id })),
    conflicts: { open: Number(conflictRows[0]?.open ?? 0), raised: Number(conflictRows[0]?.raised ?? 0), settled: Number(conflictRows[0]?.settled ?? 0) },
  }
}
