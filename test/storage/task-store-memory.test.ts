/** The TaskStore contract on the in-memory store. */
import t from 'tap'
import { MemoryTaskStore } from '../../src/storage/memory-task-store.js'
import { taskStoreContract } from './task-store-contract.js'

taskStoreContract(t, async () => {
  const store = new MemoryTaskStore()
  return {
    store,
    probe: {
      addProject: async (orgId, projectId) => store.addProject(orgId, projectId),
      history: async (orgId, taskId) => store.history(orgId, taskId),
      conflicts: async (orgId, taskId) => store.conflictsOf(orgId, taskId).map(({ field, committedValue, incomingValue, committedRev, incomingRev }) => ({ field, committedValue, incomingValue, committedRev, incomingRev })),
      tombstone: async (orgId, kind, id) => store.tombstone(orgId, kind, id),
    },
  }
})
