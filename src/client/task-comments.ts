/**
 * The comments of one task as this client knows them: the server's, with this
 * client's unacknowledged changes on top (shown at once, rolled back if refused).
 */
import type { Comment } from '../protocol/messages.js'
import { TaskSyncError } from '../protocol/errors.js'
import { newId } from './ids.js'
import type { CommentEvent } from './types.js'

export class TaskComments {
  private readonly map = new Map<string, Comment>()

  constructor(
    private readonly taskId: string,
    private readonly emit: (e: CommentEvent) => void,
  ) {}

  /** Live comments, oldest first. */
  list(): Comment[] {
    return [...this.map.values()].filter((c) => !c.deleted).sort((a, b) => (a.createdAt < b.createdAt ? -1 : 1))
  }

  /** Stores a comment and emits `comment`. */
  set(c: Comment, local: boolean): void {
    this.map.set(c.id, c)
    this.emit({ comment: c, local })
  }

  /** A new local comment. */
  create(body: string, opts: { id?: string; parentId?: string | null }, authorId: string): Comment {
    const comment: Comment = {
      id: opts.id ?? newId(),
      taskId: this.taskId,
      parentId: opts.parentId ?? null,
      authorId,
      body,
      createdAt: new Date().toISOString(),
      editedAt: null,
      editCount: 0,
      deleted: false,
    }
    this.set(comment, true)
    return comment
  }

  /** A local change of a known live comment; returns it before and after. */
  change(id: string, how: 'edit' | 'delete', body?: string): { prev: Comment; next: Comment } {
    const prev = this.map.get(id)
    if (!prev || prev.deleted) throw new TaskSyncError('not_found', `comment ${id} is not known on task ${this.taskId}`)
    const next =
      how === 'edit' ? { ...prev, body: body!, editedAt: new Date().toISOString(), editCount: prev.editCount + 1 } : { ...prev, deleted: true }
    this.set(next, true)
    return { prev, next }
  }

  /** A refused change: back to `prev`, or gone for a create. */
  rollback(id: string, prev: Comment | null): void {
    if (prev) return this.set(prev, true)
    const c = this.map.get(id)
    this.map.delete(id)
    if (c) this.emit({ comment: { ...c, deleted: true }, local: true })
  }
}
