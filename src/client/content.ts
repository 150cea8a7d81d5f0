/**
 * Pure helpers of the client state machine: splitting a snapshot into content
 * and metadata, keeping the metadata current as ops commit, and undoing a
 * rejected op under later local ones.
 */
import { invertText, taskType } from '../domain/index.js'
import type { TaskContent, TaskOp, TaskSnapshot } from '../domain/types.js'
import type { OpEvent } from '../protocol/messages.js'
import { contentOf } from '../domain/snapshot.js'

export { contentOf }

/** Who committed a rev and when, as far as the client knows it. */
export interface CommitInfo {
  rev: number
  deviceId?: string
  userId?: string
  at?: string
}

/** The snapshot at rev 1 from the task's creation op (the op on create() the server logs as rev 1). */
export function creationSnapshot(ev: OpEvent): TaskSnapshot {
  const empty: TaskSnapshot = { ...taskType.create(), id: ev.taskId, rev: 0, clock: {}, createdAt: ev.at, updatedAt: ev.at, updatedBy: ev.userId }
  return commitOnto(empty, ev.op as TaskOp, { rev: 1, deviceId: ev.deviceId, userId: ev.userId, at: ev.at })
}

/** `base` after `op` committed as `info.rev`: content applied, metadata advanced. */
export function commitOnto(base: TaskSnapshot, op: TaskOp, info: CommitInfo): TaskSnapshot {
  const content = taskType.apply(contentOf(base), op)
  const clock = { ...base.clock }
  if (info.deviceId) clock[info.deviceId] = (clock[info.deviceId] ?? 0) + 1
  return {
    ...content,
    id: base.id,
    rev: info.rev,
    clock,
    createdAt: base.createdAt,
    updatedAt: info.at ?? new Date().toISOString(),
    updatedBy: info.userId ?? base.updatedBy,
  }
}

/** The snapshot a task has before its creation commits (rev 0). */
export function unborn(id: string, content: TaskContent, userId: string | undefined): TaskSnapshot {
  const now = new Date().toISOString()
  return { ...content, id, rev: 0, clock: {}, createdAt: now, updatedAt: now, updatedBy: userId ?? '' }
}

/**
 * `pending` (built on `base`+`rejected`) rewritten to apply on `base` alone:
 * text edits are transformed past the undo of the rejected text edits;
 * set-like fields keep their values (they are absolute). Throws if it cannot apply.
 */
export function withoutRejected(base: TaskContent, rejected: TaskOp, pending: TaskOp): TaskOp {
  const out: TaskOp = { ...pending }
  for (const field of ['title', 'description'] as const) {
    const r = rejected[field]
    const p = pending[field]
    if (!r || !p) continue
    const undo = invertText(base[field], r)
    const t = taskType.transform({ [field]: p }, { [field]: undo }, 'left')[field]
    if (t) out[field] = t
    else delete out[field]
  }
  const normalized = taskType.normalize(out)
  taskType.apply(base, normalized)
  return normalized
}
