/**
 * Time travel: a task's snapshot at a rev, replayed from a starting point (the
 * empty task before rev 1, or a stored checkpoint) through the committed ops,
 * exactly as the sequencer built it (content by the op type, the vector clock
 * counting ops per device, updatedAt/updatedBy of the last op).
 */
import { applyOp, createContent } from './apply.js'
import { increment } from './clock.js'
import { toSnapshot } from './snapshot.js'
import type { TaskContent, TaskLimits, TaskOp, TaskSnapshot } from './types.js'

/** A committed op as the log keeps it. */
export interface LoggedOp {
  rev: number
  op: TaskOp
  userId: string
  deviceId: string
  at: string
}

/** Where a replay starts: a checkpoint at `rev`, or null for before the creation (rev 0). */
export interface ReplayStart {
  rev: number
  content: TaskContent
  clock: Record<string, number>
  updatedAt: string
  updatedBy: string
}

// Committed ops passed the limits of their day: a lowered limit must not make the past unreadable.
const NO_LIMITS: TaskLimits = {
  titleMax: Infinity,
  descriptionMax: Infinity,
  tagsMax: Infinity,
  tagLengthMax: Infinity,
  customFieldsMax: Infinity,
  customFieldValueBytesMax: Infinity,
  customFieldDepthMax: Infinity,
  opBytesMax: Infinity,
  commentBodyMax: Infinity,
}

/**
 * The snapshot after `ops` (consecutive revs following `start`) applied to
 * `start`. Null when the ops do not follow on without a gap, or there are none
 * from an empty start.
 */
export function replayOps(id: string, createdAt: string, start: ReplayStart | null, ops: LoggedOp[]): TaskSnapshot | null {
  let content = start?.content ?? createContent()
  let clock = start?.clock ?? {}
  let rev = start?.rev ?? 0
  let last: { at: string; userId: string } | null = start ? { at: start.updatedAt, userId: start.updatedBy } : null
  for (const o of ops) {
    if (o.rev !== rev + 1) return null
    content = applyOp(content, o.op, NO_LIMITS)
    clock = increment(clock, o.deviceId)
    rev = o.rev
    last = { at: o.at, userId: o.userId }
  }
  if (!last) return null
  return toSnapshot(content, { id, rev, clock, createdAt, updatedAt: last.at, updatedBy: last.userId })
}
