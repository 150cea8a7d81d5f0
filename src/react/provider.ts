/** The client for every hook below a TaskSyncProvider. */
import { createContext, createElement, useContext, type ReactNode } from 'react'
import type { TaskSyncClient } from '../client/index.js'
import { conflictLog } from './conflict-log.js'

const ClientContext = createContext<TaskSyncClient | null>(null)

export interface TaskSyncProviderProps {
  /** A TaskSyncClient; `connect()` may be called before or after the first render. */
  client: TaskSyncClient
  children?: ReactNode
}

/** Makes `client` available to the tasksync hooks of everything inside. */
export function TaskSyncProvider({ client, children }: TaskSyncProviderProps) {
  // Collect conflicts from the first render on, before any component asks for them.
  conflictLog(client)
  return createElement(ClientContext.Provider, { value: client }, children)
}

/** The client of the nearest TaskSyncProvider (throws outside one). */
export function useClient(): TaskSyncClient {
  const client = useContext(ClientContext)
  if (!client) throw new Error('tasksync/react: this hook must be used inside <TaskSyncProvider client={…}>')
  return client
}
