/** useWatch: the tasks of a project or of the organization, live, as snapshots. */
import { useMemo, useSyncExternalStore } from 'react'
import type { TaskHandle, TaskSnapshot, TaskSyncClient, WatchScope } from '../client/index.js'
import { useClient } from './provider.js'
import { externalStore, type ExternalStore } from './store.js'

export interface WatchState {
  /** The snapshots of the tasks in the scope now, in the order they entered it. Each is a new object only when its task changed. */
  tasks: TaskSnapshot[]
  /** The scope was refused (unknown project) or could not be listed. */
  error: Error | null
}

const EMPTY: WatchState = { tasks: [], error: null }

export function watchStore(client: TaskSyncClient, scope: WatchScope): ExternalStore<WatchState> {
  return externalStore<WatchState>(EMPTY, (set, get) => {
    const watch = client.watch(scope)
    const followed = new Map<string, { handle: TaskHandle; off: () => void }>()
    let error: Error | null = null
    let queued = false
    // One rebuild per tick however many tasks arrived or changed in it (a first listing brings hundreds).
    const rebuild = () => {
      if (queued) return
      queued = true
      queueMicrotask(() => {
        queued = false
        const tasks: TaskSnapshot[] = []
        for (const { handle } of followed.values()) if (handle.loaded && !handle.deleted) tasks.push(handle.snapshot)
        const prev = get().tasks
        if (error === get().error && tasks.length === prev.length && tasks.every((t, i) => t === prev[i])) return
        set({ tasks, error })
      })
    }
    const offs = [
      watch.on('task', (h) => {
        followed.get(h.id)?.off()
        followed.set(h.id, { handle: h, off: h.on('change', rebuild) })
        rebuild()
      }),
      watch.on('leave', (id) => {
        followed.get(id)?.off()
        followed.delete(id)
        rebuild()
      }),
      watch.on('error', (err) => {
        error = err
        rebuild()
      }),
    ]
    return () => {
      offs.forEach((off) => off())
      for (const f of followed.values()) f.off()
      watch.close()
    }
  })
}

/**
 * Follows `{projectId}` or `{all: true}` while mounted: `{tasks, error}`, with
 * tasks appearing, changing and leaving as anyone edits (offline too: tasks the
 * client has in storage show at once).
 */
export function useWatch(scope: WatchScope): WatchState {
  const client = useClient()
  const key = 'projectId' in scope ? scope.projectId : '*'
  const store = useMemo(() => watchStore(client, key === '*' ? { all: true } : { projectId: key }), [client, key])
  return useSyncExternalStore(store.subscribe, store.get, store.get)
}
