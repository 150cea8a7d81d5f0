/** The conflicts a client reported, collected per client from the provider's first render on. */
import type { ConflictEvent, TaskSyncClient } from '../client/index.js'

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
