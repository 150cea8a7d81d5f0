/**
 * Client ids and their mutation records: within an organization a clientId belongs
 * to the device that first used it, and (clientId, seq) identifies one mutation
 * forever. Organizations never share a clientId: the same UUID elsewhere is another client.
 */
import { sql } from 'drizzle-orm'
import type { Database } from './db.js'
import type { ClientBinding, MutationRecord } from './task-store.js'

/** Binds clientId to the device unless already bound; answers the binding that holds. */
export async function claimClient(database: Database, clientId: string, want: ClientBinding): Promise<ClientBinding> {
  const rows = await database.rows<{ org_id: string; user_id: string; device_id: string }>(sql`
    with ins as (
      insert into clients (client_id, org_id, user_id, device_id)
      values (${clientId}::uuid, ${want.orgId}::uuid, ${want.userId}::uuid, ${want.deviceId}::uuid)
      on conflict (org_id, client_id) do nothing
      returning org_id, user_id, device_id)
    select org_id, user_id, device_id from ins
    union all
    select org_id, user_id, device_id from clients where org_id = ${want.orgId}::uuid and client_id = ${clientId}::uuid`)
  // A claim racing another instance's claim of the same clientId waits for it and then inserts
  // nothing, but the statement's snapshot predates that commit: read the binding again.
  const r =
    rows[0] ??
    (
      await database.rows<{ org_id: string; user_id: string; device_id: string }>(
        sql`select org_id, user_id, device_id from clients where org_id = ${want.orgId}::uuid and client_id = ${clientId}::uuid`,
      )
    )[0]
  return { orgId: r.org_id, userId: r.user_id, deviceId: r.device_id }
}

/** The record of a committed (clientId, seq), or null: on its op-log row, or in client_mutations. */
export async function findMutation(database: Database, orgId: string, clientId: string, seq: number): Promise<MutationRecord | null> {
  const rows = await database.rows<{
    org_id: string
    kind: MutationRecord['kind']
    task_id: string
    rev: number | null
    comment_id: string | null
    digest: string | null
  }>(sql`(select org_id, case when rev = 1 then 'create' else 'op' end as kind, task_id, rev, null::uuid as comment_id, digest from task_ops
          where org_id = ${orgId}::uuid and client_id = ${clientId}::uuid and seq = ${seq}::bigint)
         union all
         (select org_id, kind, task_id, rev, comment_id, digest from client_mutations
          where org_id = ${orgId}::uuid and client_id = ${clientId}::uuid and seq = ${seq}::bigint)
         limit 1`)
  if (!rows.length) return null
  const r = rows[0]
  return {
    clientId,
    seq,
    orgId: r.org_id,
    kind: r.kind,
    taskId: r.task_id,
    rev: r.rev === null ? null : Number(r.rev),
    commentId: r.comment_id,
    digest: r.digest,
  }
}

/**
 * Records a mutation that wrote nothing else (an identity op): a resend then
 * answers the same rev. False when (clientId, seq) was already recorded (in
 * client_mutations or on an op-log row).
 */
export async function recordMutation(database: Database, m: MutationRecord): Promise<boolean> {
  const rows = await database.rows(sql`
    insert into client_mutations (client_id, seq, org_id, kind, task_id, rev, comment_id, digest)
    select ${m.clientId}::uuid, ${m.seq}::bigint, ${m.orgId}::uuid, ${m.kind}, ${m.taskId}::uuid, ${m.rev}::int, ${m.commentId}::uuid, ${m.digest}
    where not exists (select 1 from task_ops where org_id = ${m.orgId}::uuid and client_id = ${m.clientId}::uuid and seq = ${m.seq}::bigint)
    on conflict (org_id, client_id, seq) do nothing returning 1`)
  return rows.length > 0
}

/** Highest committed seq of each clientId bound to the device (for pull's `lastSeq`). */
export async function lastSeqs(database: Database, orgId: string, deviceId: string): Promise<Record<string, number>> {
  const rows = await database.rows<{ client_id: string; seq: string | number }>(sql`
    select c.client_id, greatest(
        (select max(m.seq) from client_mutations m where m.org_id = c.org_id and m.client_id = c.client_id),
        (select max(o.seq) from task_ops o where o.org_id = c.org_id and o.client_id = c.client_id)) as seq
    from clients c where c.org_id = ${orgId}::uuid and c.device_id = ${deviceId}::uuid`)
  return Object.fromEntries(rows.filter((r) => r.seq !== null).map((r) => [r.client_id, Number(r.seq)]))
}
