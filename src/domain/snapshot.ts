/**
 * A task snapshot (PROTOCOL.md section 1) is its content plus metadata: these
 * split one into its content and build one from both, in the contract's field order.
 */
import type { TaskContent, TaskMeta, TaskSnapshot } from './types.js'

/** The content fields of a snapshot (what the op type works on). */
export function contentOf(s: TaskContent): TaskContent {
  return {
    title: s.title,
    description: s.description,
    status: s.status,
    priority: s.priority,
    tags: s.tags,
    assigneeId: s.assigneeId,
    dueAt: s.dueAt,
    projectId: s.projectId,
    customFields: s.customFields,
    deleted: s.deleted,
  }
}

/** The snapshot of `content` with its metadata, fields in the contract's order. */
export function toSnapshot(content: TaskContent, meta: TaskMeta): TaskSnapshot {
  return {
    id: meta.id,
    projectId: content.projectId,
    rev: meta.rev,
    title: content.title,
    description: content.description,
    status: content.status,
    priority: content.priority,
    tags: content.tags,
    assigneeId: content.assigneeId,
    dueAt: content.dueAt,
    customFields: content.customFields,
    clock: meta.clock,
    deleted: content.deleted,
    createdAt: meta.createdAt,
    updatedAt: meta.updatedAt,
    updatedBy: meta.updatedBy,
  }
}
