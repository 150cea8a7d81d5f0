/**
 * Catching up over REST when the socket cannot: the op log of one task
 * (exact: local changes are transformed past every missed op), a fresh
 * snapshot, and the offline queue pushed with `POST /api/sync/push` then
 * changes pulled with `GET /api/sync/pull`. The sync endpoints may be absent
 * (404): callers then fall back to the socket.
 */
import type { TaskSnapshot } from '../domain/types.js'
import type { Comment, OpEvent } from '../protocol/messages.js'
import type { PushComment, PushMutation, PushResult, Tombstone } from '../protocol/sync.js'

export type { PushResult }
import { RestError, type RestClient } from './http.js'
import type { TaskHandle } from './task.js'
import type { CommentMutation, TaskMutation } from './types.js'

/** Feeds the task every committed op after its rev from the op log. False when the log could not be read. */
export async function catchUpFromLog(rest: RestClient, task: TaskHandle): Promise<boolean> {
  for (let guard = 0; guard < 10_000; guard++) {
    const from = task.rev + 1
    let page: { ops: OpEvent[]; hasMore: boolean }
    try {
      page = await rest.request('GET', `/api/tasks/${task.id}/ops?from=${from}`)
    } catch (err) {
      if (err instanceof RestError && err.code === 'task_deleted') {
        task.onTaskDeleted(task.rev)
        return true
      }
      return false
    }
    for (const ev of page.ops) task.onOp(ev)
    // No progress on a page that should have some: the log cannot fill the gap.
    if (page.ops.length > 0 && task.rev < from) return false
    if (!page.hasMore) return true
  }
  return false
}

/** Reads the task's snapshot over REST; null when it could not be read (network, server). */
export async function fetchSnapshot(rest: RestClient, task: TaskHandle): Promise<'ok' | 'gone' | 'failed'> {
  try {
    const snap = await rest.request<TaskSnapshot>('GET', `/api/tasks/${task.id}`)
    task.onSnapshot(snap.rev, snap, true)
    return 'ok'
  } catch (err) {
    if (err instanceof RestError && err.code === 'task_deleted') {
      task.onTaskDeleted(task.rev)
      return 'gone'
    }
    if (err instanceof RestError && err.code === 'not_found' && err.httpStatus === 404) {
      task.onMissing(err.message)
      return 'gone'
    }
    return 'failed'
  }
}


export function taskMutationForPush(taskId: string, m: TaskMutation, baseRev: number): PushMutation {
  if (m.kind === 'create') {
    const task = m.projectId !== null ? { ...m.task, projectId: m.projectId } : m.task
    return { seq: m.seq, kind: 'create', taskId, task }
  }
  // On the wire an op is any JSON object (the server validates it).
  return { seq: m.seq, kind: 'op', taskId, baseRev, op: m.op as PushMutation['op'] }
}

export function commentMutationForPush(m: CommentMutation): PushMutation {
  const comment: PushComment = { action: m.action, commentId: m.commentId }
  if (m.body !== undefined) comment.body = m.body
  if (m.parentId !== undefined) comment.parentId = m.parentId
  return { seq: m.seq, kind: 'comment', taskId: m.taskId, comment }
}

/** Pushes the queue; null when the endpoint is absent or unreachable (the socket resends instead). */
export async function push(rest: RestClient, clientId: string, mutations: PushMutation[]): Promise<PushResult[] | null> {
  if (mutations.length === 0) return []
  // A push must list seqs in increasing order.
  mutations = [...mutations].sort((a, b) => a.seq - b.seq)
  try {
    const res = await rest.request<{ results: PushResult[] }>('POST', '/api/sync/push', { clientId, mutations })
    return res.results
  } catch {
    return null
  }
}

export interface PullChanges {
  tasks: TaskSnapshot[]
  comments: Comment[]
  tombstones: Tombstone[]
  cursor: string
}

/** Pulls every change after `cursor` (all pages of one catch-up); null when the endpoint is absent or failed. */
export async function pull(rest: RestClient, cursor: string | undefined): Promise<PullChanges | null> {
  const out: PullChanges = { tasks: [], comments: [], tombstones: [], cursor: cursor ?? '' }
  let current = cursor
  for (let page = 0; page < 1000; page++) {
    const q = current ? `?cursor=${encodeURIComponent(current)}` : ''
    let res: Partial<PullChanges> & { hasMore?: boolean; reset?: boolean }
    try {
      res = await rest.request('GET', `/api/sync/pull${q}`)
    } catch {
      return null
    }
    if (res.reset) {
      if (!current) return null
      return pull(rest, undefined)
    }
    out.tasks.push(...(res.tasks ?? []))
    out.comments.push(...(res.comments ?? []))
    out.tombstones.push(...(res.tombstones ?? []))
    out.cursor = res.cursor ?? out.cursor
    current = res.cursor
    if (!res.hasMore) return out
  }
  return out
}
