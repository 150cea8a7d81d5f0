/** useConflicts: the conflicts the SDK reported (refused or lost local changes), until the app dismisses them. */
import { useMemo, useSyncExternalStore } from 'react'
import type { TaskSyncClient } from '../client/index.js'
import { conflictLog, type ReportedConflict } from './conflict-log.js'
import { useClient } from './provider.js'

export type { ReportedConflict }
import { externalStore, type ExternalStore } from './store.js'

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
