/**
 * tasksync/client: the SDK for web, mobile and Node apps.
 *
 *   const client = new TaskSyncClient({ url, credentials: { email, password } })
 *   await client.connect()
 *   const task = client.createTask({ title: 'Ship v1' })
 *   task.on('change', () => render(task.snapshot))
 *   task.submit({ title: [4, ' it'] })
 *
 * This entry has no Node built-ins (it bundles for browsers and React Native).
 * Node apps get `fileStorage` from `tasksync/client/node` (or from this entry's
 * "node" export condition).
 */
export { TaskSyncClient, type TaskSyncClientOptions, type ClientEvents } from './client.js'
export { TaskHandle, type TextField } from './task.js'
export type { UndoOptions } from './undo.js'
export { TaskWatch, type TaskWatchEvents, type WatchScope } from './watch.js'
export { memoryStorage, type ClientStorage, type StorageChanges } from './storage.js'
export { indexedDbStorage } from './indexeddb-storage.js'
export {
  AttachmentUploads,
  TaskAttachments,
  UploadHandle,
  type AttachOptions,
  type AttachSource,
  type Sha256Factory,
  type StoredSource,
  type UploadProgress,
  type UploadStatus,
} from './attachments.js'
export type { Credentials } from './auth.js'
export type { WebSocketLike, WebSocketConstructor } from './connection.js'
export type { BackoffOptions } from './backoff.js'
export type { FetchLike } from './http.js'
export type {
  ClientStatus,
  ChangeEvent,
  AckEvent,
  ConflictEvent,
  PresenceEvent,
  CommentEvent,
  TaskEvents,
  StoredTask,
  StoredMeta,
  CommentMutation,
  TaskMutation,
  TaskDiff,
  SearchFilters,
  SearchHit,
} from './types.js'
export { TaskSyncError, type ErrorCode } from '../protocol/errors.js'
export { InvalidOpError } from '../domain/errors.js'
export type { Attachment, Comment, TaskInit } from '../protocol/messages.js'
export type { TaskOp, TaskSnapshot, TaskContent, TaskPatch } from '../domain/types.js'
