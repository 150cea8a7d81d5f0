/**
 * The TaskStore on PostgreSQL or PGlite: the repositories of this folder behind
 * the port. A locked task is a transaction holding the task row `for update`.
 */
import type { Database } from './db.js'
import type { TaskStore } from './task-store.js'
import { claimClient, findMutation, recordMutation } from './clients.js'
import { deleteComment, editComment, insertComment, loadComment } from './comments.js'
import { commitCreate, commitOps } from './tasks-commit.js'
import { loadOps, loadTask, loadTasks, projectExists } from './tasks.js'

export function postgresTaskStore(database: Database): TaskStore {
  return {
    // PGlite runs one statement at a time: a second slot would only queue inside it.
    commitConcurrency: database.kind === 'pglite' ? 1 : 2,
    loadTask: (orgId, taskId) => loadTask(database, orgId, taskId),
    loadTasks: (orgId, taskIds) => loadTasks(database, orgId, taskIds),
    loadOps: (orgId, taskId, fromRev, limit) => loadOps(database, orgId, taskId, fromRev, limit),
    projectExists: (orgId, projectId) => projectExists(database, orgId, projectId),
    claimClient: (clientId, want) => claimClient(database, clientId, want),
    findMutation: (orgId, clientId, seq) => findMutation(database, orgId, clientId, seq),
    recordMutation: (record) => recordMutation(database, record),
    commitCreate: (row) => commitCreate(database, row),
    commitOps: (rows) => commitOps(database, rows),
    withTaskLocked: (orgId, taskId, fn) =>
      database.db.transaction(async (tx) => {
        const snapshot = await loadTask(database, orgId, taskId, tx, true)
        return fn({
          snapshot,
          loadOps: (fromRev, limit) => loadOps(database, orgId, taskId, fromRev, limit, tx),
          commit: async (row) => (await commitOps(database, [row], tx))[0],
        })
      }),
    loadComment: (orgId, id) => loadComment(database, orgId, id),
    insertComment: (comment, key) => insertComment(database, comment, key),
    editComment: (orgId, id, body, at, key) => editComment(database, orgId, id, body, at, key),
    deleteComment: (orgId, id, at, key) => deleteComment(database, orgId, id, at, key),
  }
}
