/** useComments: a task's comments, live, with optimistic add, edit and delete. */
import { useMemo, useSyncExternalStore } from 'react'
import type { Comment, TaskHandle, TaskSyncClient } from '../client/index.js'
import { useClient } from './provider.js'
import { externalStore, withTask, type ExternalStore } from './store.js'

export interface CommentsState {
  /** Live comments, oldest first (replies carry `parentId`). */
  comments: Comment[]
  /** True until the existing comments were read from the server once (false at once offline when some are known). */
  loading: boolean
  error: Error | null
}

const START: CommentsState = { comments: [], loading: true, error: null }

export function commentsStore(client: TaskSyncClient, taskId: string): ExternalStore<CommentsState> {
  return externalStore<CommentsState>(START, (set, get) =>
    withTask(
      client.task(taskId),
      (h: TaskHandle) => {
        const read = (loading = get().loading, error = get().error) => set({ comments: h.comments, loading, error })
        read(h.comments.length === 0)
        const off = h.on('comment', () => read())
        client.loadComments(h).then(
          () => read(false, null),
          (error: Error) => read(false, error),
        )
        return off
      },
      (error) => set({ comments: [], loading: false, error }),
    ),
  )
}

export interface CommentActions {
  add(body: string, parentId?: string | null): void
  edit(commentId: string, body: string): void
  remove(commentId: string): void
}

/** `{comments, loading, error, add, edit, remove}` for task `taskId`: changes show at once and are sent when possible. */
export function useComments(taskId: string | null | undefined): CommentsState & CommentActions {
  const client = useClient()
  const store = useMemo(() => (taskId ? commentsStore(client, taskId) : externalStore(START, () => () => {})), [client, taskId])
  const state = useSyncExternalStore(store.subscribe, store.get, store.get)
  return useMemo(() => {
    const on = (fn: (h: TaskHandle) => void) => {
      if (taskId) void client.task(taskId).then(fn)
    }
    return {
      ...state,
      add: (body, parentId) => on((h) => h.addComment(body, { parentId: parentId ?? null })),
      edit: (id, body) => on((h) => h.editComment(id, body)),
      remove: (id) => on((h) => h.deleteComment(id)),
    }
  }, [client, taskId, state])
}
