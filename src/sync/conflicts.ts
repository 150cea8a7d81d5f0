/**
 * Settling the conflict queue: what the sequencer recorded for a person to settle
 * (a `cancelled` status against another state, two differing assignees). A
 * resolution is committed as an ordinary op through the sequencer, so it fans out
 * and enters history like any edit; the conflict is kept, resolved, for audit.
 */
import type { Database } from '../storage/db.js'
import { loadTask } from '../storage/tasks.js'
import { claimConflict, loadConflict, reopenConflict, setResolvedRev, type Conflict, type Resolution } from '../storage/conflicts.js'
import { TaskSyncError } from '../protocol/errors.js'
import { validateOp } from '../domain/check.js'
import type { JsonValue, TaskLimits, TaskOp } from '../domain/types.js'
import type { Principal } from '../auth/principal.js'
import type { CommitResult, SubmitOpRequest } from '../sequencer/requests.js'

/** `{choose}` picks one side; `{value}` sets any valid value. Exactly one of them. */
export type ResolveInput = { choose: 'committed' | 'incoming' } | { value: JsonValue }

export interface ResolveServices {
  database: Database
  limits: TaskLimits
  sequencer: { submit(req: SubmitOpRequest): Promise<CommitResult> }
}

/**
 * Settles a conflict: claims it (one statement, so two people cannot both
 * settle it), commits `{field: {set: value}}` through the sequencer, then records
 * the rev. If the commit fails the claim is released and the conflict stays open.
 * A conflict already settled with the same value answers it again (a retry is
 * safe); with another value it is `already_exists` (409).
 */
export async function resolveConflict(s: ResolveServices, principal: Principal, id: string, input: ResolveInput): Promise<Conflict> {
  const { database } = s
  const conflict = await loadConflict(database, principal.orgId, id)
  if (!conflict) throw new TaskSyncError('not_found', 'no such conflict')
  const resolution: Resolution =
    'choose' in input
      ? { value: input.choose === 'committed' ? conflict.committedValue : conflict.incomingValue, choose: input.choose }
      : { value: input.value }
  if (conflict.status === 'resolved') return settledBefore(conflict, resolution)

  const task = await loadTask(database, principal.orgId, conflict.taskId)
  if (!task) throw new TaskSyncError('not_found', 'the task of this conflict no longer exists')
  if (task.deleted) throw new TaskSyncError('task_deleted', 'the task of this conflict was deleted; nothing is left to settle', { rev: task.rev })
  const op = { [conflict.field]: { set: resolution.value } } as TaskOp
  const { id: _id, rev: _rev, clock: _clock, createdAt: _c, updatedAt: _u, updatedBy: _b, ...content } = task
  validateOp(content, op, s.limits) // an invalid value is refused before anything is claimed

  if (!(await claimConflict(database, principal.orgId, id, principal.userId, resolution))) {
    return settledBefore((await loadConflict(database, principal.orgId, id))!, resolution)
  }

  let committed: CommitResult
  try {
    committed = await s.sequencer.submit({ principal, taskId: conflict.taskId, clientId: null, seq: null, baseRev: task.rev, op })
  } catch (err) {
    await reopenConflict(database, principal.orgId, id)
    throw err
  }
  await setResolvedRev(database, principal.orgId, id, committed.rev)
  return (await loadConflict(database, principal.orgId, id))!
}

function settledBefore(existing: Conflict, wanted: Resolution): Conflict {
  if (existing.resolution && JSON.stringify(existing.resolution.value) === JSON.stringify(wanted.value)) return existing
  throw new TaskSyncError('already_exists', 'this conflict was already resolved with another value', { conflict: existing })
}
