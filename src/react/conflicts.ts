/** useConflicts: the conflicts the SDK reported (refused or lost local changes), until the app dismisses them. */
import { useMemo, useSyncExternalStore } from 'react'
import type { ConflictEvent, TaskSyncClient } from '../client/index.js'
import { useClient } from './provider.js'
import { externalStore, type ExternalStore } from './store.js'

/** A conflict as reported, with when it arrived. */
export type ReportedConflict = ConflictEvent & { taskId: string; at: number; key: number }

interface Log {
  items: ReportedConflict[]
  listeners: Set<(items: ReportedConflict[]) => void>
}

const logs = new WeakMap<TaskSyncClient, Log>()
let keys = 0

/** Starts collecting a client's conflicts (TaskSyncProvider does it on its first render). */
export function conflictLog(client: TaskSyncClient): Log {
  let log = logs.get(client)
  if (!log) {
    const created: Log = { items: [], listeners: new Set() }
    client.on('conflict', (e) => {
      created.items = [...created.items, { ...e, at: Date.now(), key: ++keys }]
      for (const l of created.listeners) l(created.items)
    })
    logs.set(client, (log = created))
  }
  return log
}

function conflictsStore(client: TaskSyncClient, taskId: string | undefined): ExternalStore<ReportedConflict[]> {
  const log = conflictLog(client)
  const pick = (items: ReportedConflict[]) => (taskId ? items.filter((c) => c.taskId === taskId) : items)
  return externalStore(pick(log.items), (set) => {
    const listener = (items: ReportedConflict[]) => set(pick(items))
    log.listeners.add(listener)
    listener(log.items)
    return () => log.listeners.delete(listener)
  })
}

/**
 * `{conflicts, dismiss}`: every `conflict` event of the client (or of one task)
 * since the provider was first rendered, oldest first; `dismiss(c)` removes one
 * once the person has seen it.
 */
export function useConflicts(taskId?: string): { conflicts: ReportedConflict[]; dismiss(conflict: ReportedConflict): void } {
  const client = useClient()
  const store = useMemo(() => conflictsStore(client, taskId), [client, taskId])
  const conflicts = useSyncExternalStore(store.subscribe, store.get, store.get)
  return useMemo(
    () => ({
      conflicts,
      dismiss(conflict: ReportedConflict) {
        const log = conflictLog(client)
        log.items = log.items.filter((c) => c.key !== conflict.key)
        for (const l of log.listeners) l(log.items)
      },
    }),
    [client, conflicts],
  )
}
