/**
 * tasksync/react: React bindings of the tasksync client SDK, built on
 * useSyncExternalStore (React 18 or later, a peer dependency).
 *
 *   <TaskSyncProvider client={client}>…</TaskSyncProvider>
 *   const { snapshot, task } = useTask(id)
 *   const { tasks } = useWatch({ projectId })
 */
export { TaskSyncProvider, useClient, type TaskSyncProviderProps } from './provider.js'
export { useTask, type TaskState } from './task.js'
export { useWatch, type WatchState } from './watch.js'
export { usePresence, type Peer } from './presence.js'
export { useComments, type CommentsState, type CommentActions } from './comments.js'
export { useStatus, type StatusState } from './status.js'
export { useConflicts, type ReportedConflict } from './conflicts.js'
export { useTextField, type TextFieldOptions } from './text-field.js'
export { editOp, transformCaret, toCodePoints, toUtf16 } from './text.js'
