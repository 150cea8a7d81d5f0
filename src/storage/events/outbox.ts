/**
 * The outbox's read side: fan-out of new events into webhook deliveries and
 * notifications (exactly once: in one transaction with moving the fan-out cursor),
 * the due-date scans that emit task.due_soon / task.overdue once per due date,
 * the purge of old events and the figures for /metrics.
 */
import { sql } from 'drizzle-orm'
import type { Database, Executor } from '../db.js'
import type { NewNotification, NotificationDto, StoredEvent } from '../../events/types.js'
import type { Person, TaskFacts } from '../../events/rules.js'
import { iso } from '../tasks.js'
import { toNotification, type NotificationRow } from './notifications.js'

export interface EventRow {
  seq: string | number
  id: string
  org_id: string
  type: StoredEvent['type']
  task_id: string | null
  rev: number | null
  actor_id: string | null
  at: string
  /** The change as PostgreSQL prints its jsonb: carried as text into the payload, parsed only when read. */
  change: string
}

export const eventColumns = (p: string) =>
  sql.raw(`${p}seq, ${p}id, ${p}org_id, ${p}type, ${p}task_id, ${p}rev, ${p}actor_id, ${p}change::text as change, to_char(${p}at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as at`)

/**
 * An event read from the outbox for fan-out or delivery. Its change stays the text
 * PostgreSQL sent (the webhook payload embeds it as is: no parse and re-serialization
 * per delivery); `change` parses it on first read (the notification rules).
 */
class OutboxEvent implements StoredEvent {
  private parsed: Record<string, unknown> | undefined
  constructor(
    readonly seq: number,
    readonly id: string,
    readonly orgId: string,
    readonly type: StoredEvent['type'],
    readonly taskId: string | null,
    readonly rev: number | null,
    readonly actorId: string | null,
    readonly at: string,
    readonly changeJson: string,
  ) {}

  get change(): Record<string, unknown> {
    return (this.parsed ??= JSON.parse(this.changeJson) as Record<string, unknown>)
  }
}

export function toEvent(r: EventRow): StoredEvent {
  return new OutboxEvent(Number(r.seq), r.id, r.org_id, r.type, r.task_id, r.rev === null ? null : Number(r.rev), r.actor_id, r.at, r.change)
}

/** What fan-out needs to know to derive notifications. */
export interface FanOutFacts {
  people: Map<string, Person[]>
  tasks: Map<string, TaskFacts>
}

export const taskKey = (orgId: string, taskId: string) => `${orgId}:${taskId}`

export interface FanOutResult {
  events: StoredEvent[]
  notifications: Array<NotificationDto & { orgId: string; userId: string }>
}

/**
 * (Endpoint, task) pairs whose run a dispatcher is sending right now: fan-out
 * leases their new deliveries to it at once (`leaseMs`), so they join the run
 * without waiting for the run to end and a round to claim them.
 */
export interface HeldPairs {
  pairs: Array<{ endpointId: string; orderKey: string }>
  leaseMs: number
}

/** A delivery fan-out leased to the dispatcher holding its pair (url and secret as of now). */
export interface LeasedDelivery {
  id: number
  endpointId: string
  orderKey: string
  url: string
  secret: string
  windowStart: string
  event: StoredEvent
}

/**
 * The newest transaction id up to which every write transaction of this database
 * has ended: the oldest one of this database still in progress in the statement's
 * snapshot, or the snapshot's xmax. Transactions of other databases of the
 * cluster do not hold it back (pg_stat_activity tells which are theirs); one
 * that ended after the snapshot was taken is waited for as if it were ours. An
 * event whose xid is below it is visible now, and no event can still appear below it.
 */
const fanOutHorizon = sql`(
  select least(pg_snapshot_xmax(s.snap), (
    select min(x) from pg_snapshot_xip(s.snap) as x
    where not exists (select 1 from pg_stat_activity a where a.backend_xid = x::xid and a.datname is distinct from current_database())))
  from (select pg_current_snapshot() as snap) s)`

/**
 * Takes up to `limit` events not yet fanned out, in (xid, seq) order, writes a
 * delivery for every active endpoint of their organization subscribed to their
 * type and the notifications `derive` makes of them, and moves the fan-out cursor
 * past them — inside the caller's transaction, so each event is fanned out exactly
 * once. One instance at a time: the cursor row is locked (`skip locked`: the others
 * skip fan-out this round), which keeps deliveries of a task in seq order. Events
 * are never written to again: the cursor stops below the oldest write transaction
 * of this database still open, so one that commits late is not passed over. People
 * and tasks are read only for the events `needsFacts` names.
 *
 * A new delivery of a `held` pair is written leased (and returned) when nothing of
 * the pair is waiting unleased before it: the holder's run already has every
 * earlier pending delivery of the pair, so appending keeps rev order; otherwise it
 * is left to the claim, behind the ones waiting.
 */
export async function fanOut(
  database: Database,
  tx: Executor,
  limit: number,
  derive: (events: StoredEvent[], facts: FanOutFacts) => NewNotification[],
  needsFacts: (e: StoredEvent) => boolean,
  held?: HeldPairs,
): Promise<FanOutResult & { leased: LeasedDelivery[] }> {
  // Its own statement: the events are then read with a snapshot taken after the
  // lock, so they include whatever the fan-out that held it before committed.
  const [cursor] = await database.rows<{ xid: string; seq: string }>(sql`
    select xid::text as xid, seq from event_fanout_cursor where id = 1 for update skip locked`, tx)
  if (!cursor) return { events: [], notifications: [], leased: [] }
  const rows = await database.rows<EventRow & { xid: string }>(sql`
    select ${eventColumns('')}, xid::text as xid from events
    where (xid, seq) > (${cursor.xid}::xid8, ${cursor.seq}::bigint) and xid < ${fanOutHorizon}
    order by xid, seq limit ${limit}::int`, tx)
  if (rows.length === 0) return { events: [], notifications: [], leased: [] }
  const events = rows.map(toEvent)
  const last = rows[rows.length - 1]
  const seqs = `{${events.map((e) => e.seq).join(',')}}`
  const pairs = held && held.pairs.length > 0 ? JSON.stringify(held.pairs.map((p) => ({ e: p.endpointId, k: p.orderKey }))) : null
  // Deliveries and the cursor in one statement; notifications, when any, in a second.
  const leasedRows = await database.rows<{ id: string; endpoint_id: string; order_key: string; event_seq: string; window_start: string; url: string; secret: string }>(sql`
    with h as (select * from jsonb_to_recordset(${pairs}::jsonb) as h(e uuid, k uuid)),
    d as (
      insert into webhook_deliveries (org_id, endpoint_id, event_seq, order_key, state, lease_until)
      select e.org_id, w.id, e.seq, coalesce(e.task_id, e.id), case when w.failing_since is null then 'pending' else 'dead' end,
        case when w.failing_since is null and exists (select 1 from h where h.e = w.id and h.k = coalesce(e.task_id, e.id))
          and not exists (
            select 1 from webhook_deliveries p where p.endpoint_id = w.id and p.order_key = coalesce(e.task_id, e.id)
              and p.state = 'pending' and (p.lease_until is null or p.lease_until < now()))
        then now() + make_interval(secs => ${(held?.leaseMs ?? 0) / 1000}::float8) end
      from events e join webhook_endpoints w on w.org_id = e.org_id and w.active
        and (w.events @> '["*"]'::jsonb or w.events @> jsonb_build_array(e.type))
      where e.seq = any(${seqs}::bigint[]) and e.type <> 'webhook.test'
      order by e.seq
      returning id, org_id, endpoint_id, order_key, event_seq, lease_until, window_start),
    c as (update event_fanout_cursor set xid = ${last.xid}::xid8, seq = ${last.seq}::bigint where id = 1)
    select d.id, d.endpoint_id, d.order_key, d.event_seq, ${iso(sql`d.window_start`)} as window_start, w.url, w.secret
    from d join webhook_endpoints w on w.org_id = d.org_id and w.id = d.endpoint_id
    where d.lease_until is not null order by d.event_seq`, tx)
  const bySeq = new Map(events.map((e) => [e.seq, e]))
  const leased = leasedRows.map((r) => ({
    id: Number(r.id),
    endpointId: r.endpoint_id,
    orderKey: r.order_key,
    url: r.url,
    secret: r.secret,
    windowStart: r.window_start,
    event: bySeq.get(Number(r.event_seq))!,
  }))
  const factful = events.filter(needsFacts)
  const derived = factful.length === 0 ? [] : derive(factful, await loadFacts(database, factful, tx))
  const notifications = derived.length === 0 ? [] : await insertNotifications(database, derived, tx)
  return { events, notifications, leased }
}

async function loadFacts(database: Database, events: StoredEvent[], tx: Executor): Promise<FanOutFacts> {
  const people = new Map<string, Person[]>()
  const tasks = new Map<string, TaskFacts>()
  const wanted = events.filter((e) => e.taskId && /^(task|comment)\./.test(e.type))
  if (wanted.length === 0) return { people, tasks }
  const orgs = `{${[...new Set(wanted.map((e) => e.orgId))].join(',')}}`
  const pairs = JSON.stringify(wanted.map((e) => ({ org_id: e.orgId, id: e.taskId })))
  const users = await database.rows<{ org_id: string; id: string; email: string; display_name: string }>(sql`
    select org_id, id, email, display_name from users where org_id = any(${orgs}::uuid[]) and deactivated_at is null`, tx)
  for (const u of users) people.set(u.org_id, [...(people.get(u.org_id) ?? []), { id: u.id, email: u.email, displayName: u.display_name }])
  const found = await database.rows<{ org_id: string; id: string; title: string; assignee_id: string | null; created_by: string }>(sql`
    select t.org_id, t.id, t.content->>'title' as title, t.assignee_id, t.created_by
    from tasks t join (select distinct * from jsonb_to_recordset(${pairs}::jsonb) as x(org_id uuid, id uuid)) x
      on t.org_id = x.org_id and t.id = x.id`, tx)
  for (const t of found) tasks.set(taskKey(t.org_id, t.id), { title: t.title, assigneeId: t.assignee_id, createdBy: t.created_by })
  return { people, tasks }
}

async function insertNotifications(database: Database, items: NewNotification[], tx: Executor): Promise<FanOutResult['notifications']> {
  const json = JSON.stringify(items.map((n) => ({ org_id: n.orgId, user_id: n.userId, kind: n.kind, event_id: n.eventId, task_id: n.taskId, title: n.title })))
  const rows = await database.rows<NotificationRow & { org_id: string; user_id: string }>(sql`
    with n as (select * from jsonb_to_recordset(${json}::jsonb) as x(org_id uuid, user_id uuid, kind text, event_id uuid, task_id uuid, title text)),
    ins as (
      insert into notifications (org_id, user_id, kind, event_id, task_id, title, mail)
      select n.org_id, n.user_id, n.kind, n.event_id, n.task_id, n.title,
        case coalesce(s.prefs->>n.kind, 'immediately') when 'digest' then 'digest' when 'off' then 'none' else 'pending' end
      from n left join notification_settings s on s.org_id = n.org_id and s.user_id = n.user_id
      on conflict (user_id, event_id, kind) do nothing
      returning *)
    select org_id, user_id, id, kind, task_id, event_id, title, ${iso(sql`created_at`)} as created_at, null as read_at from ins`, tx)
  return rows.map((r) => ({ ...toNotification(r), orgId: r.org_id, userId: r.user_id }))
}

/**
 * Emits task.due_soon (due within 24 h) and task.overdue (due passed) for live
 * tasks not done or cancelled: once per task, due date and kind, whichever
 * instance runs it first (the due_alerts key decides). Task content is not touched.
 */
export async function scanDueDates(database: Database): Promise<number> {
  const rows = await database.rows<{ n: number }>(sql`
    with due as (
      select org_id, id, (content->>'dueAt')::timestamptz as due_at, rev from tasks
      where not deleted and status not in ('done', 'cancelled') and content->>'dueAt' is not null),
    found as (
      select org_id, id, due_at, rev, case when due_at <= now() then 'overdue' else 'due_soon' end as kind
      from due where due_at <= now() + interval '24 hours'),
    alerts as (
      insert into due_alerts (org_id, task_id, due_at, kind)
      select org_id, id, due_at, kind from found
      on conflict do nothing returning org_id, task_id, due_at, kind),
    ev as (
      insert into events (org_id, type, task_id, rev, change)
      select a.org_id, 'task.' || a.kind, a.task_id, f.rev,
        jsonb_build_object('dueAt', to_char(a.due_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
      from alerts a join found f on f.org_id = a.org_id and f.id = a.task_id
      returning 1)
    select count(*)::int as n from ev`)
  return Number(rows[0]?.n ?? 0)
}

/** Deletes fanned-out events from before `cutoff` whose deliveries were all delivered (dead letters and pending ones keep theirs). */
export async function purgeEvents(database: Database, cutoff: Date, exec?: Executor): Promise<number> {
  const rows = await database.rows<{ n: number }>(sql`
    with gone as (
      delete from events e using event_fanout_cursor c
      where c.id = 1 and (e.xid, e.seq) <= (c.xid, c.seq) and e.at < ${cutoff.toISOString()}::timestamptz
        and not exists (select 1 from webhook_deliveries d where d.event_seq = e.seq and d.state <> 'delivered')
      returning e.seq),
    d as (delete from webhook_deliveries where event_seq in (select seq from gone))
    select count(*)::int as n from gone`, exec)
  return Number(rows[0]?.n ?? 0)
}

export interface OutboxFigures {
  /** Events not yet fanned out, plus deliveries still to make. */
  pendingEvents: number
  pendingDeliveries: number
  /** Pending deliveries that failed at least once. */
  retrying: number
  dead: number
}

/**
 * What is still to do and what is dead, read at scrape time. Each count goes through an
 * index that holds only its rows (the fan-out cursor's range, the pending and the dead
 * partial indexes), so a scrape costs the backlog, not the delivered rows kept for
 * EVENT_RETENTION_DAYS; deliveries made are the dispatchers' own counter.
 */
export async function outboxFigures(database: Database): Promise<OutboxFigures> {
  const [r] = await database.rows<Record<string, string | number>>(sql`
    select (select count(*) from events e, event_fanout_cursor c where c.id = 1 and (e.xid, e.seq) > (c.xid, c.seq)) as pending_events,
      p.pending, p.retrying,
      (select count(*) from webhook_deliveries where state = 'dead') as dead
    from (select count(*) as pending, count(*) filter (where last_error is not null) as retrying
          from webhook_deliveries where state = 'pending') p`)
  return {
    pendingEvents: Number(r.pending_events),
    pendingDeliveries: Number(r.pending),
    retrying: Number(r.retrying),
    dead: Number(r.dead),
  }
}
