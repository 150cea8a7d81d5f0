/**
 * Compose of canonical ops: `compose(a, b)` applied once equals `a` then `b`.
 */
import { finish, tagsEdit } from './op.js'
import { composeText } from './text.js'
import { sortedSet } from './values.js'
import type { TaskOp } from './types.js'

export function composeOps(a: TaskOp, b: TaskOp): TaskOp {
  // After a delete every op is ignored, and a delete ends whatever came before.
  if (a.delete || b.delete) return { delete: true }
  const text = (x?: TaskOp['title'], y?: TaskOp['title']) => (x && y ? composeText(x, y) : (y ?? x))
  const out: TaskOp = {
    title: text(a.title, b.title),
    description: text(a.description, b.description),
    status: b.status ?? a.status,
    priority: b.priority ?? a.priority,
    tags: composeTags(a.tags, b.tags),
    assigneeId: b.assigneeId ?? a.assigneeId,
    dueAt: b.dueAt ?? a.dueAt,
    projectId: b.projectId ?? a.projectId,
    customFields: a.customFields || b.customFields ? { ...a.customFields, ...b.customFields } : undefined,
  }
  return finish(out)
}

/** add = (a.add − b.remove) ∪ b.add, remove = (a.remove − b.add) ∪ b.remove: disjoint when a and b are. */
function composeTags(a: TaskOp['tags'], b: TaskOp['tags']): TaskOp['tags'] {
  if (!a || !b) return b ?? a
  const bAdd = new Set(b.add ?? [])
  const bRemove = new Set(b.remove ?? [])
  return tagsEdit(
    sortedSet([...(a.add ?? []).filter((t) => !bRemove.has(t)), ...bAdd]),
    sortedSet([...(a.remove ?? []).filter((t) => !bAdd.has(t)), ...bRemove]),
  )
}
