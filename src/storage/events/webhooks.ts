/**
 * Webhook endpoints of an organization and their deliveries. A dispatcher claims
 * deliveries with a lease (`for update skip locked`, then `lease_until`): only the
 * oldest pending delivery of an (endpoint, task) can be claimed, so a task's
 * events reach an endpoint in rev order, and a lease that runs out (its instance
 * died) makes the delivery claimable again: at least once, same webhook-id.
 */
import { sql } from 'drizzle-orm'
import type { Database, Executor } from '../db.js'
import type { StoredEvent } from '../../events/types.js'
import { iso } from '../tasks.js'
import { eventColumns, toEvent, type EventRow } from './outbox.js'

export interface WebhookEndpoint {
  id: string
  url: string
  events: string[]
  active: boolean
  failing: boolean
  failingSince: string | null
  createdAt: string
  updatedAt: string
}

interface EndpointRow {
  id: string
  url: string
  events: string[]
  active: boolean
  failing_since: string | null
  created_at: string
  updated_at: string
  secret: string
}

const endpointColumns = sql`id, url, events, active, secret, ${iso(sql`failing_since`)} as failing_since,
  ${iso(sql`created_at`)} as created_at, ${iso(sql`updated_at`)} as updated_at`

function toEndpoint(r: EndpointRow): WebhookEndpoint {
  return { id: r.id, url: r.url, events: r.events, active: r.active, failing: r.failing_since !== null, failingSince: r.failing_since, createdAt: r.created_at, updatedAt: r.updated_at }
}

export async function listEndpoints(database: Database, orgId: string): Promise<WebhookEndpoint[]> {
  const rows = await database.rows<EndpointRow>(sql`select ${endpointColumns} from webhook_endpoints where org_id = ${orgId}::uuid order by created_at, id`)
  return rows.map(toEndpoint)
}

export async function loadEndpoint(database: Database, orgId: string, id: string): Promise<(WebhookEndpoint & { secret: string }) | null> {
  const rows = await database.rows<EndpointRow>(sql`select ${endpointColumns} from webhook_endpoints where org_id = ${orgId}::uuid and id = ${id}::uuid`)
  return rows.length ? { ...toEndpoint(rows[0]), secret: rows[0].secret } : null
}

export async function insertEndpoint(
  database: Database,
  orgId: string,
  e: { id: string; url: string; events: string[]; secret: string; active: boolean },
): Promise<WebhookEndpoint & { secret: string }> {
  const [row] = await database.rows<EndpointRow>(sql`
    insert into webhook_endpoints (org_id, id, url, events, secret, active)
    values (${orgId}::uuid, ${e.id}::uuid, ${e.url}, ${JSON.stringify(e.events)}::jsonb, ${e.secret}, ${e.active})
    returning ${endpointColumns}`)
  return { ...toEndpoint(row), secret: row.secret }
}

/** Changes url, events, secret or active; turning an endpoint active again clears `failing`. Null when missing. */
export async function updateEndpoint(
  database: Database,
  orgId: string,
  id: string,
  change: { url?: string; events?: string[]; secret?: string; active?: boolean },
): Promise<WebhookEndpoint | null> {
  const rows = await database.rows<EndpointRow>(sql`
    update webhook_endpoints set
      url = coalesce(${change.url ?? null}::text, url),
      events = coalesce(${change.events ? JSON.stringify(change.events) : null}::jsonb, events),
      secret = coalesce(${change.secret ?? null}::text, secret),
      active = coalesce(${change.active ?? null}::boolean, active),
      failing_since = case when ${change.active ?? null}::boolean then null else failing_since end,
      updated_at = now()
    where org_id = ${orgId}::uuid and id = ${id}::uuid
    returning ${endpointColumns}`)
  return rows.length ? toEndpoint(rows[0]) : null
}

/** Deletes the endpoint and its deliveries; false when missing. */
export async function deleteEndpoint(database: Database, orgId: string, id: string): Promise<boolean> {
  const rows = await database.rows(sql`
    with gone as (delete from webhook_endpoints where org_id = ${orgId}::uuid and id = ${id}::uuid returning id),
    d as (delete from webhook_deliveries where org_id = ${orgId}::uuid and endpoint_id in (select id from gone))
    select id from gone`)
  return rows.length > 0
}

/** Queues a `webhook.test` event for this endpoint alone; its event id. */
export async function queueTestEvent(database: Database, orgId: string, endpointId: string, actorId: string): Promise<string> {
  const [row] = await database.rows<{ id: string }>(sql`
    with ev as (
      insert into events (org_id, type, actor_id, change)
      values (${orgId}::uuid, 'webhook.test', ${actorId}::uuid, '{"test":true}'::jsonb) returning seq, id),
    d as (insert into webhook_deliveries (org_id, endpoint_id, event_seq, order_key) select ${orgId}::uuid, ${endpointId}::uuid, seq, id from ev)
    select id from ev`)
  return row.id
}

export interface DeliveryDto {
  id: number
  eventId: string
  eventType: string
  state: 'pending' | 'delivered' | 'dead'
  attempts: number
  lastStatus: number | null
  lastError: string | null
  latencyMs: number | null
  createdAt: string
  deliveredAt: string | null
  nextAttemptAt: string | null
}

/** The delivery log of an endpoint, newest first; `state: 'dead'` is the dead-letter list. */
export async function listDeliveries(
  database: Database,
  orgId: string,
  endpointId: string,
  q: { state?: DeliveryDto['state']; before?: number; limit: number },
): Promise<DeliveryDto[]> {
  const rows = await database.rows<Record<string, unknown>>(sql`
    select d.id, e.id as event_id, e.type, d.state, d.attempts, d.last_status, d.last_error, d.last_latency_ms,
      ${iso(sql`d.created_at`)} as created_at, ${iso(sql`d.delivered_at`)} as delivered_at, ${iso(sql`d.next_at`)} as next_at
    from webhook_deliveries d join events e on e.seq = d.event_seq
    where d.org_id = ${orgId}::uuid and d.endpoint_id = ${endpointId}::uuid
      ${q.state ? sql`and d.state = ${q.state}` : sql``}
      ${q.before ? sql`and d.id < ${q.before}::bigint` : sql``}
    order by d.id desc limit ${q.limit}::int`)
  return rows.map((r) => ({
    id: Number(r.id),
    eventId: r.event_id as string,
    eventType: r.type as string,
    state: r.state as DeliveryDto['state'],
    attempts: Number(r.attempts),
    lastStatus: r.last_status === null ? null : Number(r.last_status),
    lastError: r.last_error as string | null,
    latencyMs: r.last_latency_ms === null ? null : Number(r.last_latency_ms),
    createdAt: r.created_at as string,
    deliveredAt: r.delivered_at as string | null,
    nextAttemptAt: r.state === 'pending' ? (r.next_at as string) : null,
  }))
}

/** Puts the endpoint's dead letters back in the queue (a fresh retry window) and clears `failing`; how many. */
export async function redeliverDead(database: Database, orgId: string, endpointId: string): Promise<number> {
  const rows = await database.rows<{ n: number }>(sql`
    with ep as (update webhook_endpoints set failing_since = null, updated_at = now() where org_id = ${orgId}::uuid and id = ${endpointId}::uuid returning id),
    d as (
      update webhook_deliveries set state = 'pending', next_at = now(), window_start = now(), lease_until = null
      where org_id = ${orgId}::uuid and endpoint_id in (select id from ep) and state = 'dead' returning 1)
    select count(*)::int as n from d`)
  return Number(rows[0]?.n ?? 0)
}

/** A delivery a dispatcher holds under lease, with what it needs to send it. */
export interface ClaimedDelivery {
  id: number
  orgId: string
  endpointId: string
  /** The (endpoint, task) run it belongs to: a run is sent in order, one after the other. */
  orderKey: string
  url: string
  secret: string
  /** This attempt's number (1 for the first). */
  attempt: number
  windowStart: string
  event: StoredEvent
}

/**
 * Leases due deliveries in runs, inside the caller's transaction: for up to `limit`
 * (endpoint, task) pairs whose oldest pending delivery is due and unleased, that one
 * and up to `run - 1` more of the same pair, in seq order. Nobody else can claim a
 * later delivery of the pair while an earlier one is pending, so runs keep rev
 * order. An endpoint holds at most `perEndpoint` runs at once (a slow receiver keeps
 * to its own slots).
 *
 * The candidates are locked with `skip locked` (two dispatchers claiming at once
 * take different pairs); of each pair only the run that starts at its head and has
 * no hole is leased — a row locked or changed by someone else ends the run there,
 * so no later delivery is ever leased without the ones before it (a locked row's
 * rank among the pair's locked rows equals its position only up to the first hole).
 */
export async function claimDeliveries(
  database: Database,
  tx: Executor,
  limit: number,
  perEndpoint: number,
  run: number,
  leaseMs: number,
  /** Events whose deliveries this round's fan-out just wrote: a pair whose head is one of them is left to the claims of others (and this dispatcher's next round). */
  notHeadedBy: number[] = [],
): Promise<ClaimedDelivery[]> {
  const rows = await database.rows<EventRow & { d_id: string; d_org: string; endpoint_id: string; order_key: string; url: string; secret: string; attempts: number; window_start: string }>(sql`
    with busy as (
      select endpoint_id, count(distinct order_key) as n from webhook_deliveries
      where state = 'pending' and lease_until > now() group by endpoint_id),
    -- The oldest pending delivery of each (endpoint, task), read in the order of the
    -- partial index on pending ones; it is claimable when due and not leased.
    oldest as (
      select distinct on (d.endpoint_id, d.order_key) d.id, d.org_id, d.endpoint_id, d.order_key, d.event_seq, d.next_at, d.lease_until
      from webhook_deliveries d where d.state = 'pending'
      order by d.endpoint_id, d.order_key, d.event_seq),
    heads as (
      select o.id, o.endpoint_id, o.order_key, o.event_seq,
        row_number() over (partition by o.endpoint_id order by o.event_seq) + coalesce(b.n, 0) as slot
      from oldest o
      join webhook_endpoints w on w.org_id = o.org_id and w.id = o.endpoint_id and w.active
      left join busy b on b.endpoint_id = o.endpoint_id
      where o.next_at <= now() and (o.lease_until is null or o.lease_until < now())
        and o.event_seq <> all(${`{${notHeadedBy.join(',')}}`}::bigint[])),
    picked as (select * from heads where slot <= ${perEndpoint}::int order by event_seq limit ${limit}::int),
    cand as (
      select r.id, h.endpoint_id, h.order_key, r.pos from picked h
      cross join lateral (
        select f.id, row_number() over (order by f.event_seq) as pos from webhook_deliveries f
        where f.endpoint_id = h.endpoint_id and f.order_key = h.order_key and f.state = 'pending' and f.event_seq >= h.event_seq
        order by f.event_seq limit ${run}::int) r),
    -- State and lease are checked again on the locked rows (another dispatcher may
    -- have taken or recorded them since the snapshot).
    c as (
      select d.id, cand.endpoint_id, cand.order_key, cand.pos from cand
      join webhook_deliveries d on d.id = cand.id
      where d.state = 'pending' and (d.lease_until is null or d.lease_until < now())
      for update of d skip locked),
    runs as (
      select id from (select c.id, c.pos, row_number() over (partition by c.endpoint_id, c.order_key order by c.pos) as k from c) z
      where z.k = z.pos),
    u as (
      update webhook_deliveries d set lease_until = now() + make_interval(secs => ${leaseMs / 1000}::float8)
      from runs where d.id = runs.id
      returning d.id, d.org_id, d.endpoint_id, d.order_key, d.event_seq, d.attempts, d.window_start)
    select u.id as d_id, u.org_id as d_org, u.endpoint_id, u.order_key, u.attempts, ${iso(sql`u.window_start`)} as window_start,
      w.url, w.secret, ${eventColumns('e.')}
    from u join events e on e.seq = u.event_seq join webhook_endpoints w on w.org_id = u.org_id and w.id = u.endpoint_id
    order by e.seq`, tx)
  return rows.map((r) => ({
    id: Number(r.d_id),
    orgId: r.d_org,
    endpointId: r.endpoint_id,
    orderKey: r.order_key,
    url: r.url,
    secret: r.secret,
    attempt: Number(r.attempts) + 1,
    windowStart: r.window_start,
    event: toEvent(r),
  }))
}

/** What a dispatcher learnt from its finished runs, recorded together in its next round. */
export interface AttemptRecords {
  /** Answered 2xx. */
  delivered: Array<{ id: number; status: number; latencyMs: number }>
  /** Failed: retried at `retryAt`, or dead when null (past the retry window). */
  failed: Array<{ id: number; orgId: string; endpointId: string; status: number | null; error: string; latencyMs: number; retryAt: Date | null }>
  /** Leased but not attempted (the run stopped early): given back. */
  released: number[]
}

export const noRecords = (): AttemptRecords => ({ delivered: [], failed: [], released: [] })

export const recordCount = (r: AttemptRecords): number => r.delivered.length + r.failed.length + r.released.length

/**
 * Records finished attempts in the caller's transaction: the successes and the
 * given-back leases in one statement, each failure in its own (they are rare).
 */
export async function recordAttempts(database: Database, r: AttemptRecords, tx: Executor): Promise<void> {
  if (r.delivered.length > 0 || r.released.length > 0) {
    const done = JSON.stringify(r.delivered.map((d) => ({ id: d.id, status: d.status, latency: d.latencyMs })))
    await database.rows(sql`
      with x as (select * from jsonb_to_recordset(${done}::jsonb) as x(id bigint, status int, latency int)),
      ok as (
        update webhook_deliveries d set state = 'delivered', delivered_at = now(), lease_until = null, attempts = d.attempts + 1,
          last_status = x.status, last_latency_ms = x.latency, last_error = null
        from x where d.id = x.id and d.state = 'pending')
      update webhook_deliveries set lease_until = null where id = any(${`{${r.released.join(',')}}`}::bigint[]) and state = 'pending'`, tx)
  }
  for (const f of r.failed) await markFailed(database, f, f, f.retryAt, tx)
}
/**
 * A delivery failed: retried at `retryAt`, or, past its window, dead — then the
 * endpoint is marked failing and its other pending deliveries become dead letters too.
 */
async function markFailed(
  database: Database,
  d: { id: number; orgId: string; endpointId: string },
  result: { status: number | null; error: string; latencyMs: number },
  retryAt: Date | null,
  tx: Executor,
): Promise<void> {
  if (retryAt) {
    await database.rows(sql`
      update webhook_deliveries set next_at = ${retryAt.toISOString()}::timestamptz, lease_until = null, attempts = attempts + 1,
        last_status = ${result.status}::int, last_error = ${result.error}, last_latency_ms = ${result.latencyMs}::int
      where id = ${d.id}::bigint and state = 'pending'`, tx)
    return
  }
  await database.rows(sql`
    with dead as (
      update webhook_deliveries set state = 'dead', lease_until = null, attempts = attempts + 1,
        last_status = ${result.status}::int, last_error = ${result.error}, last_latency_ms = ${result.latencyMs}::int
      where id = ${d.id}::bigint and state = 'pending' returning endpoint_id),
    ep as (
      update webhook_endpoints set failing_since = coalesce(failing_since, now())
      where org_id = ${d.orgId}::uuid and id in (select endpoint_id from dead) returning id),
    rest as (
      update webhook_deliveries set state = 'dead', lease_until = null
      where org_id = ${d.orgId}::uuid and endpoint_id in (select id from ep) and state = 'pending' and id <> ${d.id}::bigint)
    select 1`, tx)
}
