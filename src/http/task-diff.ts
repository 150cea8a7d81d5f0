/** What changed in a task between two revs, per field, from the two snapshots and the history in between. */
import { historyChanges } from '../domain/index.js'
import { contentOf } from '../domain/snapshot.js'
import type { JsonValue, TaskSnapshot } from '../domain/types.js'
import type { HistoryEntry } from '../storage/tasks.js'

export interface FieldDiff {
  from: JsonValue
  to: JsonValue
  changedBy: string[]
  changes: number
}

export function diffSnapshots(a: TaskSnapshot, b: TaskSnapshot, between: HistoryEntry[]): { taskId: string; from: number; to: number; fields: Record<string, FieldDiff> } {
  const fields: Record<string, FieldDiff> = {}
  const before = contentOf(a)
  const after = contentOf(b)
  const field = (key: string) =>
    (fields[key] ??= { from: before[key as keyof typeof before] as JsonValue, to: after[key as keyof typeof after] as JsonValue, changedBy: [], changes: 0 })
  for (const h of between) {
    for (const key of Object.keys(h.changes)) {
      const f = field(key)
      f.changes++
      if (!f.changedBy.includes(h.userId)) f.changedBy.push(h.userId)
    }
  }
  for (const key of Object.keys(historyChanges(before, after))) field(key)
  return { taskId: a.id, from: a.rev, to: b.rev, fields }
}
