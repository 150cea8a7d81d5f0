/**
 * The payload path of one delivered event, in process: how the dispatcher turns an
 * outbox row into the signed body. "old" is what main did (postgres.js parses the
 * jsonb change at fan-out and again at claim, the rules read it, the send
 * re-serializes it); "new" carries PostgreSQL's text of the change into the body.
 *
 *   npx tsx load/payload-bench.ts
 */
import { webhookPayload, type StoredEvent } from '../src/events/types.js'
import { toEvent } from '../src/storage/events/outbox.js'
import { mayNotify } from '../src/events/rules.js'
import { randomUUID } from 'node:crypto'
const text = '{"fields": {"title": {"to": "load task 12", "from": "load task 11"}}}'
const row = { seq: '123', id: randomUUID(), org_id: randomUUID(), type: 'task.updated' as const, task_id: randomUUID(), rev: 12, actor_id: randomUUID(), at: '2026-12-07T15:00:00.000Z', change: text }
const N = 300000
function old() { // postgres.js parses jsonb twice (fan-out and claim), mayNotify reads it, the send stringifies
  const a = { ...row, change: JSON.parse(text) }; const b = { ...row, change: JSON.parse(text) }
  const ea: StoredEvent = { seq: 1, id: a.id, orgId: a.org_id, type: a.type, taskId: a.task_id, rev: a.rev, actorId: a.actor_id, at: a.at, change: a.change }
  const eb: StoredEvent = { ...ea, change: b.change }
  mayNotify(ea); return webhookPayload(eb).length
}
function now() { const ea = toEvent(row); const eb = toEvent(row); mayNotify(ea); return webhookPayload(eb).length }
for (const [n, f] of [['old', old], ['new', now], ['old', old], ['new', now]] as const) { const t = performance.now(); let s = 0; for (let i = 0; i < N; i++) s += f(); console.log(n, ((performance.now() - t) * 1000 / N).toFixed(2), 'µs per event') }
