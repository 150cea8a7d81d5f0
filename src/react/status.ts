/** useStatus: the connection state and the number of local changes waiting for the server. */
import { useMemo, useSyncExternalStore } from 'react'
import type { ClientStatus, TaskSyncClient } from '../client/index.js'
import { useClient } from './provider.js'
import { externalStore, type ExternalStore } from './store.js'

export interface StatusState {
  /** connecting | syncing | online | offline */
  status: ClientStatus
  /** Task edits and comment changes not yet acknowledged. */
  pending: number
}

const stores = new WeakMap<TaskSyncClient, ExternalStore<StatusState>>()

export function statusStore(client: TaskSyncClient): ExternalStore<StatusState> {
  let store = stores.get(client)
  if (!store) {
    store = externalStore<StatusState>({ status: client.status, pending: safePending(client) }, (set) => {
      const read = () => set({ status: client.status, pending: safePending(client) })
      read()
      const offs = [client.on('status', read), client.on('pending', read)]
      return () => offs.forEach((off) => off())
    })
    stores.set(client, store)
  }
  return store
}

const safePending = (client: TaskSyncClient) => {
  try {
    return client.pending
  } catch {
    return 0
  }
}

/** `{status, pending}`, re-rendered when either changes. */
export function useStatus(): StatusState {
  const client = useClient()
  const store = useMemo(() => statusStore(client), [client])
  return useSyncExternalStore(store.subscribe, store.get, store.get)
}
