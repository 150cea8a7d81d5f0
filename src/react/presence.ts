/** usePresence: who else is on a task, and where, and this client's own presence. */
import { useCallback, useMemo, useSyncExternalStore } from 'react'
import type { TaskHandle, TaskSyncClient } from '../client/index.js'
import { useClient } from './provider.js'
import { externalStore, withTask, type ExternalStore } from './store.js'

export interface Peer {
  clientId: string
  userId: string
  /** What that client shares: e.g. `{field: 'title', cursor: 4, typing: true}`. */
  state: Record<string, unknown>
}

const NOBODY: Peer[] = []

export function presenceStore(client: TaskSyncClient, taskId: string): ExternalStore<Peer[]> {
  return externalStore<Peer[]>(NOBODY, (set) =>
    withTask(
      client.task(taskId),
      (h: TaskHandle) => {
        const read = () => set([...h.presence].map(([clientId, p]) => ({ clientId, userId: p.userId, state: p.state })))
        read()
        return h.on('presence', read)
      },
      () => set(NOBODY),
    ),
  )
}

/**
 * `[peers, setPresence]`: the other clients on task `taskId` (cleared while
 * disconnected) and a function sharing this client's state (null clears it).
 */
export function usePresence(taskId: string | null | undefined): [Peer[], (state: Record<string, unknown> | null) => void] {
  const client = useClient()
  const store = useMemo(() => (taskId ? presenceStore(client, taskId) : externalStore(NOBODY, () => () => {})), [client, taskId])
  const peers = useSyncExternalStore(store.subscribe, store.get, store.get)
  const share = useCallback(
    (state: Record<string, unknown> | null) => {
      if (taskId) client.task(taskId).then((h) => h.setPresence(state), () => {})
    },
    [client, taskId],
  )
  return [peers, share]
}
