/**
 * Notifications of a person and their settings; the claims of the mailer
 * (a lease per notification: at least once) and of the daily digest (one
 * transaction per person holding their settings row: once a day across instances).
 */
import { sql } from 'drizzle-orm'
import type { Database, Executor } from '../db.js'
import type { MailPref, NotificationDto, NotificationKind } from '../../events/types.js'
import { iso } from '../tasks.js'

export interface NotificationRow {
  id: string
  kind: NotificationKind
  task_id: string | null
  event_id: string
  title: string
  created_at: string
  read_at: string | null
}

export function toNotification(r: NotificationRow): NotificationDto {
  return { id: r.id, kind: r.kind, taskId: r.task_id, eventId: r.event_id, title: r.title, createdAt: r.created_at, readAt: r.read_at }
}

const columns = sql`id, kind, task_id, event_id, title, ${iso(sql`created_at`)} as created_at, ${iso(sql`read_at`)} as read_at`

/** A person's notifications, newest first, and how many are unread. */
export async function listNotifications(
  database: Database,
  orgId: string,
  userId: string,
  q: { unread: boolean; before?: string; limit: number },
): Promise<{ items: NotificationDto[]; unread: number }> {
  const rows = await database.rows<NotificationRow>(sql`
    select ${columns} from notifications
    where org_id = ${orgId}::uuid and user_id = ${userId}::uuid
      ${q.unread ? sql`and read_at is null` : sql``}
      ${q.before ? sql`and created_at < (select created_at from notifications where org_id = ${orgId}::uuid and id = ${q.before}::uuid)` : sql``}
    order by created_at desc, id limit ${q.limit}::int`)
  return { items: rows.map(toNotification), unread: await unreadCount(database, orgId, userId) }
}

export async function unreadCount(database: Database, orgId: string, userId: string): Promise<number> {
  const [r] = await database.rows<{ n: number }>(sql`
    select count(*)::int as n from notifications where org_id = ${orgId}::uuid and user_id = ${userId}::uuid and read_at is null`)
  return Number(r.n)
}

/** Marks the given notifications (or all, when `ids` is null) of the person read; how many changed. */
export async function markRead(database: Database, orgId: string, userId: string, ids: string[] | null): Promise<number> {
  const rows = await database.rows<{ n: number }>(sql`
    with r as (
      update notifications set read_at = now()
      where org_id = ${orgId}::uuid and user_id = ${userId}::uuid and read_at is null
        ${ids ? sql`and id = any(${`{${ids.join(',')}}`}::uuid[])` : sql``}
      returning 1)
    select count(*)::int as n from r`)
  return Number(rows[0]?.n ?? 0)
}

export interface NotificationSettings {
  timeZone: string
  mail: Record<NotificationKind, MailPref>
}

export async function loadSettings(database: Database, orgId: string, userId: string): Promise<{ timeZone: string; prefs: Record<string, string> }> {
  const rows = await database.rows<{ time_zone: string; prefs: Record<string, string> }>(sql`
    select time_zone, prefs from notification_settings where org_id = ${orgId}::uuid and user_id = ${userId}::uuid`)
  return rows.length ? { timeZone: rows[0].time_zone, prefs: rows[0].prefs } : { timeZone: 'UTC', prefs: {} }
}

export async function saveSettings(database: Database, orgId: string, userId: string, change: { timeZone?: string; prefs?: Record<string, string> }): Promise<void> {
  await database.rows(sql`
    insert into notification_settings (org_id, user_id, time_zone, prefs)
    values (${orgId}::uuid, ${userId}::uuid, ${change.timeZone ?? 'UTC'}, ${JSON.stringify(change.prefs ?? {})}::jsonb)
    on conflict (org_id, user_id) do update set
      time_zone = coalesce(${change.timeZone ?? null}::text, notification_settings.time_zone),
      prefs = notification_settings.prefs || ${JSON.stringify(change.prefs ?? {})}::jsonb`)
}

/** A notification to mail, with its recipient. */
export interface MailItem {
  orgId: string
  id: string
  email: string
  displayName: string
  title: string
  kind: NotificationKind
  taskId: string | null
}

/** Leases up to `limit` notifications to mail now. */
export async function claimMails(database: Database, limit: number, leaseMs: number): Promise<MailItem[]> {
  const rows = await database.rows<{ org_id: string; id: string; email: string; display_name: string; title: string; kind: NotificationKind; task_id: string | null }>(sql`
    with c as (
      select org_id, id from notifications
      where mail = 'pending' and (mail_lease_until is null or mail_lease_until < now())
      order by created_at limit ${limit}::int for update skip locked),
    u as (
      update notifications n set mail_lease_until = now() + make_interval(secs => ${leaseMs / 1000}::float8)
      from c where n.org_id = c.org_id and n.id = c.id returning n.org_id, n.id, n.user_id, n.title, n.kind, n.task_id)
    select u.org_id, u.id, us.email, us.display_name, u.title, u.kind, u.task_id
    from u join users us on us.org_id = u.org_id and us.id = u.user_id`)
  return rows.map((r) => ({ orgId: r.org_id, id: r.id, email: r.email, displayName: r.display_name, title: r.title, kind: r.kind, taskId: r.task_id }))
}

export async function markMailed(database: Database, orgId: string, id: string): Promise<void> {
  await database.rows(sql`update notifications set mail = 'sent', mail_lease_until = null where org_id = ${orgId}::uuid and id = ${id}::uuid`)
}

/** A person whose digest is due, with what goes in it. */
export interface Digest {
  orgId: string
  userId: string
  email: string
  displayName: string
  /** The local day (YYYY-MM-DD) the digest is for. */
  day: string
  items: Array<{ title: string; kind: NotificationKind; taskId: string | null; createdAt: string }>
}

/**
 * Sends each due digest through `send`: people whose local time is past 08:00 and
 * who have had no digest today and have notifications waiting for it. Each runs in
 * a transaction that holds the person's settings row, marks the items sent and the
 * day done only when `send` succeeded: once a day, whichever instance gets there.
 */
export async function runDigests(database: Database, send: (d: Digest) => Promise<void>, limit = 20): Promise<number> {
  let sent = 0
  for (let i = 0; i < limit; i++) {
    const done = await database.db.transaction(async (tx) => {
      const due = await database.rows<{ org_id: string; user_id: string; day: string; email: string; display_name: string }>(sql`
        select s.org_id, s.user_id, to_char(now() at time zone s.time_zone, 'YYYY-MM-DD') as day, u.email, u.display_name
        from notification_settings s join users u on u.org_id = s.org_id and u.id = s.user_id and u.deactivated_at is null
        where (now() at time zone s.time_zone)::time >= time '08:00'
          and (s.last_digest_on is null or s.last_digest_on < to_char(now() at time zone s.time_zone, 'YYYY-MM-DD'))
          and exists (select 1 from notifications n where n.org_id = s.org_id and n.user_id = s.user_id and n.mail = 'digest')
        limit 1 for update of s skip locked`, tx)
      if (due.length === 0) return false
      const d = due[0]
      const items = await database.rows<{ title: string; kind: NotificationKind; task_id: string | null; created_at: string }>(sql`
        update notifications set mail = 'sent' where org_id = ${d.org_id}::uuid and user_id = ${d.user_id}::uuid and mail = 'digest'
        returning title, kind, task_id, ${iso(sql`created_at`)} as created_at`, tx)
      await database.rows(sql`update notification_settings set last_digest_on = ${d.day} where org_id = ${d.org_id}::uuid and user_id = ${d.user_id}::uuid`, tx)
      items.sort((a, b) => a.created_at.localeCompare(b.created_at))
      await send({
        orgId: d.org_id,
        userId: d.user_id,
        email: d.email,
        displayName: d.display_name,
        day: d.day,
        items: items.map((r) => ({ title: r.title, kind: r.kind, taskId: r.task_id, createdAt: r.created_at })),
      })
      return true
    })
    if (!done) break
    sent++
  }
  return sent
}

/**
 * Housekeeping: notifications older than `cutoff` whose mail is settled (none or
 * sent; one waiting for its mail or digest is kept), and due-date alerts older
 * than `cutoff` that can no longer fire again: their task is gone, deleted, done
 * or cancelled, or has another due date now. An alert of a task still open with
 * the same due date is kept, or the next scan would emit its event a second time.
 */
export async function purgeNotifications(database: Database, cutoff: Date, exec?: Executor): Promise<{ notifications: number; dueAlerts: number }> {
  const at = cutoff.toISOString()
  const [r] = await database.rows<{ n: number; a: number }>(sql`
    with n as (
      delete from notifications where created_at < ${at}::timestamptz and mail in ('none', 'sent') returning 1),
    a as (
      delete from due_alerts d where d.created_at < ${at}::timestamptz and not exists (
        select 1 from tasks t where t.org_id = d.org_id and t.id = d.task_id and not t.deleted
          and t.status not in ('done', 'cancelled') and (t.content->>'dueAt')::timestamptz = d.due_at)
      returning 1)
    select (select count(*) from n)::int as n, (select count(*) from a)::int as a`, exec)
  return { notifications: Number(r?.n ?? 0), dueAlerts: Number(r?.a ?? 0) }
}
