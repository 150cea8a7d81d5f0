/**
 * The TaskStore in memory: the same rules as the PostgreSQL store (the contract
 * suite holds both to them) without a database, so the sequencer's own tests run
 * in milliseconds. Every commit is applied in one synchronous step, which is what
 * one statement (or one transaction) is on PostgreSQL; a locked task holds back
 * every other commit of that task until its callback settles. Values go in and
 * come out as copies, as they would through a database.
 */
import type { Conflict } from './conflicts.js'
import type { TaskSnapshot } from '../domain/types.js'
import type { Comment } from '../protocol/messages.js'
import { toSnapshot } from '../domain/snapshot.js'
import type {
  ClientBinding,
  CommitOutcome,
  CommitRow,
  LockedTask,
  MutationKey,
  MutationRecord,
  NewComment,
  StoredOp,
  TaskStore,
} from './task-store.js'

/** A history entry as written beside a commit. */
export interface MemoryHistoryEntry {
  rev: number
  userId: string
  deviceId: string
  at: string
  changes: Record<string, unknown>
}

/** A conflict as written beside a commit (before anyone settles it). */
export type MemoryConflict = Pick<Conflict, 'id' | 'taskId' | 'field' | 'committedValue' | 'incomingValue' | 'committedRev' | 'incomingRev' | 'incomingUserId'>

/** A deletion kept for offline devices. */
export interface MemoryTombstone {
  kind: 'task' | 'comment'
  id: string
  taskId: string
  rev: number | null
  deletedAt: string
}

const copy = <T>(value: T): T => structuredClone(value)

export class MemoryTaskStore implements TaskStore {
  readonly commitConcurrency = 2
  private readonly tasks = new Map<string, TaskSnapshot>()
  private readonly ops = new Map<string, StoredOp[]>()
  private readonly histories = new Map<string, MemoryHistoryEntry[]>()
  private readonly conflicts = new Map<string, MemoryConflict[]>()
  private readonly tombstones = new Map<string, MemoryTombstone>()
  private readonly projects = new Set<string>()
  private readonly clients = new Map<string, ClientBinding>()
  private readonly mutations = new Map<string, MutationRecord>()
  private readonly comments = new Map<string, Comment>()
  private readonly locks = new Map<string, Promise<void>>()
  private closed = false

  async loadTask(orgId: string, taskId: string): Promise<TaskSnapshot | null> {
    this.open()
    const task = this.tasks.get(key(orgId, taskId))
    return task ? copy(task) : null
  }

  async loadTasks(orgId: string, taskIds: string[]): Promise<TaskSnapshot[]> {
    this.open()
    const found: TaskSnapshot[] = []
    for (const id of new Set(taskIds)) {
      const task = this.tasks.get(key(orgId, id))
      if (task) found.push(copy(task))
    }
    return found
  }

  async loadOps(orgId: string, taskId: string, fromRev: number, limit: number): Promise<StoredOp[]> {
    this.open()
    return this.opsOf(orgId, taskId, fromRev, limit)
  }

  async projectExists(orgId: string, projectId: string): Promise<boolean> {
    this.open()
    return this.projects.has(key(orgId, projectId))
  }

  async claimClient(clientId: string, want: ClientBinding): Promise<ClientBinding> {
    this.open()
    const k = key(want.orgId, clientId)
    if (!this.clients.has(k)) this.clients.set(k, copy(want))
    return copy(this.clients.get(k)!)
  }

  async findMutation(orgId: string, clientId: string, seq: number): Promise<MutationRecord | null> {
    this.open()
    const record = this.mutations.get(mutationKey(orgId, clientId, seq))
    return record ? copy(record) : null
  }

  async recordMutation(record: MutationRecord): Promise<boolean> {
    this.open()
    const k = mutationKey(record.orgId, record.clientId, record.seq)
    if (this.mutations.has(k)) return false
    this.mutations.set(k, copy(record))
    return true
  }

  async commitCreate(row: CommitRow): Promise<CommitOutcome> {
    this.open()
    const dup = this.duplicateOf(row)
    if (dup) return dup
    if (this.tasks.has(key(row.orgId, row.taskId))) return { kind: 'lost' }
    this.write(row, 'create', row.at)
    return { kind: 'committed' }
  }

  async commitOps(rows: CommitRow[]): Promise<CommitOutcome[]> {
    this.open()
    // Like the statement waiting on a row lock: a locked task's commit waits for its holder.
    for (let held = this.held(rows); held.length > 0; held = this.held(rows)) await Promise.all(held)
    this.open()
    // A chain (one task's consecutive revs) is written whole or not at all, as by the statement.
    const outcomes: CommitOutcome[] = []
    for (let i = 0; i < rows.length; ) {
      let end = i + 1
      while (end < rows.length && rows[end].orgId === rows[i].orgId && rows[end].taskId === rows[i].taskId) end++
      const chain = rows.slice(i, end)
      const dups = chain.map((row) => this.duplicateOf(row))
      const current = this.tasks.get(key(rows[i].orgId, rows[i].taskId))
      if (dups.some((d) => d !== null) || !current || current.rev !== rows[i].prevRev) {
        outcomes.push(...dups.map((d) => d ?? { kind: 'lost' as const }))
      } else {
        for (const row of chain) outcomes.push(this.commitOp(row))
      }
      i = end
    }
    return outcomes
  }

  async withTaskLocked<T>(orgId: string, taskId: string, fn: (task: LockedTask) => Promise<T>): Promise<T> {
    this.open()
    const k = key(orgId, taskId)
    while (this.locks.has(k)) await this.locks.get(k)
    let release!: () => void
    this.locks.set(k, new Promise<void>((resolve) => (release = resolve)))
    try {
      const current = this.tasks.get(k)
      return await fn({
        snapshot: current ? copy(current) : null,
        loadOps: async (fromRev, limit) => (this.open(), this.opsOf(orgId, taskId, fromRev, limit)),
        commit: async (row) => (this.open(), this.commitOp(row)),
      })
    } finally {
      this.locks.delete(k)
      release()
    }
  }

  async loadComment(orgId: string, id: string): Promise<Comment | null> {
    this.open()
    const c = this.comments.get(key(orgId, id))
    return c ? copy(c) : null
  }

  async insertComment(c: NewComment, m: MutationKey): Promise<Comment | null> {
    this.open()
    const k = key(c.orgId, c.id)
    if (this.comments.has(k)) return null
    this.checkKey(c.orgId, m)
    const comment: Comment = { id: c.id, taskId: c.taskId, parentId: c.parentId, authorId: c.authorId, body: c.body, createdAt: c.at, editedAt: null, editCount: 0, deleted: false }
    this.comments.set(k, comment)
    this.recordComment(c.orgId, comment, m)
    return copy(comment)
  }

  async editComment(orgId: string, id: string, body: string, at: string, m: MutationKey): Promise<Comment | null> {
    this.open()
    const current = this.comments.get(key(orgId, id))
    if (!current || current.deleted) return null
    this.checkKey(orgId, m)
    const comment: Comment = { ...current, body, editedAt: at, editCount: current.editCount + 1 }
    this.comments.set(key(orgId, id), comment)
    this.recordComment(orgId, comment, m)
    return copy(comment)
  }

  async deleteComment(orgId: string, id: string, at: string, m: MutationKey): Promise<Comment | null> {
    this.open()
    const current = this.comments.get(key(orgId, id))
    if (!current || current.deleted) return null
    this.checkKey(orgId, m)
    const comment: Comment = { ...current, body: '', deleted: true }
    this.comments.set(key(orgId, id), comment)
    this.recordComment(orgId, comment, m)
    const tk = `${orgId}:comment:${id}`
    if (!this.tombstones.has(tk)) this.tombstones.set(tk, { kind: 'comment', id, taskId: comment.taskId, rev: null, deletedAt: at })
    return copy(comment)
  }

  // ── for tests: what the database holds beside the port's reads ──

  /** Adds a project (the projects routes do it on PostgreSQL). */
  addProject(orgId: string, projectId: string): void {
    this.projects.add(key(orgId, projectId))
  }

  /** The task's history entries, oldest first. */
  history(orgId: string, taskId: string): MemoryHistoryEntry[] {
    return copy(this.histories.get(key(orgId, taskId)) ?? [])
  }

  /** The conflicts recorded on the task, in commit order. */
  conflictsOf(orgId: string, taskId: string): MemoryConflict[] {
    return copy(this.conflicts.get(key(orgId, taskId)) ?? [])
  }

  tombstone(orgId: string, kind: 'task' | 'comment', id: string): MemoryTombstone | null {
    const t = this.tombstones.get(`${orgId}:${kind}:${id}`)
    return t ? copy(t) : null
  }

  /** Drops the task's ops below `rev` (what trimming the op log to a window does). */
  trimOps(orgId: string, taskId: string, belowRev: number): void {
    const k = key(orgId, taskId)
    this.ops.set(k, (this.ops.get(k) ?? []).filter((o) => o.rev >= belowRev))
  }

  /** Every later call rejects as a closed connection pool does. */
  close(): void {
    this.closed = true
  }

  // ── internals ──

  private open(): void {
    if (this.closed) throw Object.assign(new Error('the memory task store is closed'), { code: 'CONNECTION_ENDED' })
  }

  private held(rows: CommitRow[]): Promise<void>[] {
    return rows.map((r) => this.locks.get(key(r.orgId, r.taskId))).filter((p): p is Promise<void> => p !== undefined)
  }

  private opsOf(orgId: string, taskId: string, fromRev: number, limit: number): StoredOp[] {
    return copy((this.ops.get(key(orgId, taskId)) ?? []).filter((o) => o.rev >= fromRev).slice(0, limit))
  }

  private duplicateOf(row: CommitRow): CommitOutcome | null {
    if (row.clientId === null || row.seq === null) return null
    const record = this.mutations.get(mutationKey(row.orgId, row.clientId, row.seq))
    return record ? { kind: 'duplicate', record: copy(record) } : null
  }

  private commitOp(row: CommitRow): CommitOutcome {
    const dup = this.duplicateOf(row)
    if (dup) return dup
    const current = this.tasks.get(key(row.orgId, row.taskId))
    if (!current || current.rev !== row.prevRev) return { kind: 'lost' }
    this.write(row, 'op', current.createdAt)
    return { kind: 'committed' }
  }

  /** Writes a commit and everything beside it, in one step. */
  private write(row: CommitRow, kind: 'create' | 'op', createdAt: string): void {
    const k = key(row.orgId, row.taskId)
    const meta = { id: row.taskId, rev: row.rev, clock: row.clock, createdAt, updatedAt: row.at, updatedBy: row.userId }
    this.tasks.set(k, copy(toSnapshot(row.content, meta)))
    const op: StoredOp = { rev: row.rev, op: row.op, userId: row.userId, deviceId: row.deviceId, clientId: row.clientId, seq: row.seq, at: row.at }
    this.ops.set(k, [...(this.ops.get(k) ?? []), copy(op)])
    this.histories.set(k, [...(this.histories.get(k) ?? []), copy({ rev: row.rev, userId: row.userId, deviceId: row.deviceId, at: row.at, changes: row.changes })])
    if (row.clientId !== null && row.seq !== null) {
      this.mutations.set(mutationKey(row.orgId, row.clientId, row.seq), { clientId: row.clientId, seq: row.seq, orgId: row.orgId, kind, taskId: row.taskId, rev: row.rev, commentId: null, digest: row.digest })
    }
    if (row.conflicts.length > 0) {
      const recorded = row.conflicts.map((c) => ({
        id: c.id,
        taskId: row.taskId,
        field: c.field,
        committedValue: c.committed,
        incomingValue: c.incoming,
        committedRev: c.committedRev,
        incomingRev: row.rev,
        incomingUserId: row.userId,
      }))
      this.conflicts.set(k, [...(this.conflicts.get(k) ?? []), ...copy(recorded)])
    }
    const tk = `${row.orgId}:task:${row.taskId}`
    if (row.tombstone && !this.tombstones.has(tk)) this.tombstones.set(tk, { kind: 'task', id: row.taskId, taskId: row.taskId, rev: row.rev, deletedAt: row.at })
  }

  /** A comment change whose (clientId, seq) is recorded already fails as its statement does: on the primary key. */
  private checkKey(orgId: string, m: MutationKey): void {
    if (m.clientId !== null && m.seq !== null && this.mutations.has(mutationKey(orgId, m.clientId, m.seq))) {
      throw Object.assign(new Error('duplicate key value violates unique constraint "client_mutations_org_id_client_id_seq_pk"'), { code: '23505' })
    }
  }

  private recordComment(orgId: string, comment: Comment, m: MutationKey): void {
    if (m.clientId === null || m.seq === null) return
    this.mutations.set(mutationKey(orgId, m.clientId, m.seq), { clientId: m.clientId, seq: m.seq, orgId, kind: 'comment', taskId: comment.taskId, rev: null, commentId: comment.id, digest: m.digest })
  }
}

const key = (orgId: string, id: string): string => `${orgId}:${id}`
const mutationKey = (orgId: string, clientId: string, seq: number): string => `${orgId}:${clientId}:${seq}`
