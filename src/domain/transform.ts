/**
 * Transform of canonical ops, field by field (the rules of PROTOCOL.md
 * section 2), and the conflicts a pair of concurrent ops leaves for a person.
 *
 * `transform(op, other, side)`: `other` is concurrent with `op` and already
 * applied. Side 'left': `op` commits after `other` (how the server transforms
 * an incoming op against a committed one). Side 'right': `op` committed
 * first (how a client transforms a received op against its pending ones).
 */
import { finish, tagsEdit } from './op.js'
import { transformText } from './text.js'
import type { ConflictReport, CustomFieldEdit, Status, TaskOp } from './types.js'

const STATUS_RANK: Record<Status, number> = { todo: 0, in_progress: 1, in_review: 2, done: 3, cancelled: -1 }

/** Whether `mine` survives a concurrent set of `theirs`. */
function statusWins(mine: Status, theirs: Status, side: 'left' | 'right'): boolean {
  if (mine === theirs) return false
  // `cancelled` against another state: the one committed first stays.
  if (mine === 'cancelled' || theirs === 'cancelled') return side === 'right'
  return STATUS_RANK[mine] > STATUS_RANK[theirs] // the further state wins
}

export function transformOp(op: TaskOp, other: TaskOp, side: 'left' | 'right'): TaskOp {
  if (other.delete) return {} // deletion wins, a concurrent delete included
  if (op.delete) return { delete: true }
  const out: TaskOp = {}
  if (op.title) out.title = other.title ? transformText(op.title, other.title, side) : op.title
  if (op.description) {
    out.description = other.description ? transformText(op.description, other.description, side) : op.description
  }
  if (op.status && (!other.status || statusWins(op.status.set, other.status.set, side))) out.status = op.status
  if (op.priority && (!other.priority || op.priority.set > other.priority.set)) out.priority = op.priority
  if (op.tags) {
    // Add-wins: a tag the other op adds is not removed by this one.
    const added = new Set(other.tags?.add ?? [])
    out.tags = tagsEdit(op.tags.add ?? [], (op.tags.remove ?? []).filter((t) => !added.has(t)))
  }
  // Last writer in server order wins: on side 'right' the other op is the later one.
  const keep = (mine: unknown, theirs: unknown) => mine !== undefined && (side === 'left' || theirs === undefined)
  if (keep(op.assigneeId, other.assigneeId)) out.assigneeId = op.assigneeId
  if (keep(op.dueAt, other.dueAt)) out.dueAt = op.dueAt
  if (keep(op.projectId, other.projectId)) out.projectId = op.projectId
  if (op.customFields) {
    const theirs = other.customFields ?? {}
    const fields: Record<string, CustomFieldEdit> = {}
    for (const key of Object.keys(op.customFields)) {
      if (keep(op.customFields[key], Object.hasOwn(theirs, key) ? theirs[key] : undefined)) fields[key] = op.customFields[key]
    }
    out.customFields = fields
  }
  return finish(out)
}

/**
 * What a person should settle when `incoming` commits after the concurrent
 * `committed`: `cancelled` against another state, or two different assignees.
 * Both ops canonical (as normalize answers them), `incoming` not yet transformed.
 */
export function detectConflicts(incoming: TaskOp, committed: TaskOp): ConflictReport[] {
  if (incoming.delete || committed.delete) return []
  const out: ConflictReport[] = []
  const a = incoming.status?.set
  const b = committed.status?.set
  if (a && b && a !== b && (a === 'cancelled' || b === 'cancelled')) {
    out.push({ field: 'status', committed: b, incoming: a })
  }
  if (incoming.assigneeId && committed.assigneeId && incoming.assigneeId.set !== committed.assigneeId.set) {
    out.push({ field: 'assigneeId', committed: committed.assigneeId.set, incoming: incoming.assigneeId.set })
  }
  return out
}
