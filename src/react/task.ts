/** useTask: one task's handle and snapshot, re-rendered on every change (local or remote). */
import { useMemo, useSyncExternalStore } from 'react'
import type { TaskHandle, TaskSnapshot, TaskSyncClient } from '../client/index.js'
import { useClient } from './provider.js'
import { externalStore, withTask, type ExternalStore } from './store.js'

export interface TaskState {
  /** The live handle (submit, update, delete, comments, presence), once loaded. */
  task: TaskHandle | null
  /** Its current snapshot (local changes included); a new object after each change. */
  snapshot: TaskSnapshot | null
  /** True until the task is loaded or known missing. */
  loading: boolean
  /** `not_found` when the task does not exist or cannot be seen. */
  error: Error | null
}

const LOADING: TaskState = { task: null, snapshot: null, loading: true, error: null }
const NONE: TaskState = { task: null, snapshot: null, loading: false, error: null }

export function taskStore(client: TaskSyncClient, id: string): ExternalStore<TaskState> {
  return externalStore<TaskState>(LOADING, (set, get) => {
    const read = (h: TaskHandle) => {
      const snapshot = h.loaded ? h.snapshot : null
      if (get().task !== h || get().snapshot !== snapshot) set({ task: h, snapshot, loading: false, error: h.missing })
    }
    return withTask(
      client.task(id),
      (h) => {
        read(h)
        const offs = [h.on('change', () => read(h)), h.on('deleted', () => read(h))]
        return () => offs.forEach((off) => off())
      },
      (error) => set({ ...NONE, error }),
    )
  })
}

const idle = externalStore(NONE, () => () => {})

/**
 * The task `id` as this client sees it: `{task, snapshot, loading, error}`.
 * Opens it (from storage, or from the server once connected) and follows it
 * while the component is mounted; `null` gives an empty state.
 */
export function useTask(id: string | null | undefined): TaskState {
  const client = useClient()
  const store = useMemo(() => (id ? taskStore(client, id) : idle), [client, id])
  return useSyncExternalStore(store.subscribe, store.get, store.get)
}
