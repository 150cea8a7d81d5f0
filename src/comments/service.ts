/**
 * Comments: create, edit (author only) and delete (author or admin), each
 * idempotent by (clientId, seq), each announced on `org:<orgId>` as a
 * CommentNotice after it is committed. A deleted comment stays as a tombstone
 * (empty body, `deleted: true`) so replies keep their thread.
 */
import { TaskSyncError } from '../protocol/errors.js'
import type { Comment } from '../protocol/messages.js'
import { InvalidOpError } from '../domain/index.js'
import type { Principal } from '../auth/principal.js'
import { textProblem } from '../domain/values.js'
import type { Bus } from '../bus/types.js'
import type { CommentNotice } from '../bus/notices.js'
import { Announcer } from '../bus/announcer.js'
import type { MutationKey, TaskStore } from '../storage/task-store.js'
import { mutationDigest, type MutationForm } from '../sequencer/digest.js'
import { asUnavailable, isLostRace } from '../storage/errors.js'
import { checkMutationKey, type SequencerLogger } from '../sequencer/requests.js'
import type { CommentCreateRequest, CommentDeleteRequest, CommentEditRequest, CommentListener, CommentResult } from './types.js'

export interface CommentServiceOptions {
  store: TaskStore
  bus: Bus
  instanceId: string
  /** Most code points in a body. */
  bodyMax: number
  /** Binds clientIds exactly as task mutations do (the sequencer's). */
  bindClient(principal: Principal, clientId: string): Promise<void>
  logger?: SequencerLogger
}

type Request = (CommentCreateRequest | CommentEditRequest | CommentDeleteRequest) & { taskId?: string }

/** A committed comment change and the project its task was in when the change was checked. */
interface Written {
  comment: Comment
  projectId: string | null
}

/** The refusals a write gives when a racing twin of it committed between the resend check and the write. */
function isRaceVerdict(err: unknown): boolean {
  return err instanceof TaskSyncError && (err.code === 'already_exists' || err.code === 'not_found')
}

export class CommentService {
  private readonly announcer: Announcer<CommentNotice>
  private readonly inFlight = new Set<Promise<unknown>>()
  private draining = false

  constructor(private readonly opts: CommentServiceOptions) {
    this.announcer = new Announcer(opts.bus, opts.instanceId, opts.logger)
  }

  /** Adds a comment to a live task; parentId must name a comment of the same task. */
  create(req: CommentCreateRequest): Promise<CommentResult> {
    return this.run(req, 'create', async () => {
      const body = this.checkBody(req.body)
      const projectId = await this.liveTask(req.principal.orgId, req.taskId)
      const parentId = req.parentId ?? null
      if (parentId !== null) {
        const parent = await this.opts.store.loadComment(req.principal.orgId, parentId)
        if (!parent || parent.taskId !== req.taskId) throw new InvalidOpError('parentId', `no comment ${parentId} on task ${req.taskId}`)
      }
      const at = new Date().toISOString()
      const { orgId, userId } = req.principal
      const c = { orgId, id: req.commentId, taskId: req.taskId, parentId, authorId: userId, body, at }
      // Refused before the clientId is bound: a refusal changes nothing, not even the binding.
      if (await this.opts.store.loadComment(orgId, req.commentId)) throw new TaskSyncError('already_exists', `comment ${req.commentId} already exists`)
      await this.bind(req)
      const comment = await this.opts.store.insertComment(c, keyOf(req, 'create'))
      if (!comment) throw new TaskSyncError('already_exists', `comment ${req.commentId} already exists`)
      return { comment, projectId }
    })
  }

  /** Replaces the body; only the author may. */
  edit(req: CommentEditRequest): Promise<CommentResult> {
    return this.run(req, 'edit', async () => {
      const body = this.checkBody(req.body)
      const { comment: current, projectId } = await this.liveComment(req)
      if (current.authorId !== req.principal.userId) throw new TaskSyncError('forbidden', 'only the author may edit a comment')
      await this.bind(req)
      const comment = await this.opts.store.editComment(req.principal.orgId, req.commentId, body, new Date().toISOString(), { ...keyOf(req, 'edit'), actorId: req.principal.userId })
      if (!comment) throw new TaskSyncError('not_found', `comment ${req.commentId} not found`)
      return { comment, projectId }
    })
  }

  /** Deletes (tombstones) a comment; its author or an admin may. */
  delete(req: CommentDeleteRequest): Promise<CommentResult> {
    return this.run(req, 'delete', async () => {
      const { comment: current, projectId } = await this.liveComment(req)
      const { role, userId, orgId } = req.principal
      if (current.authorId !== userId && role !== 'admin' && role !== 'owner') {
        throw new TaskSyncError('forbidden', 'only the author or an admin may delete a comment')
      }
      await this.bind(req)
      const comment = await this.opts.store.deleteComment(orgId, req.commentId, new Date().toISOString(), { ...keyOf(req, 'delete'), actorId: userId })
      if (!comment) throw new TaskSyncError('not_found', `comment ${req.commentId} not found`)
      return { comment, projectId }
    })
  }

  /** Listens to this instance's comment changes, synchronously, before they are published. */
  onComment(listener: CommentListener): () => void {
    return this.announcer.listen(listener)
  }

  /** Refuses new mutations with `unavailable` and waits for begun ones and their publications. */
  async drain(): Promise<void> {
    this.draining = true
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight])
    await this.announcer.idle()
  }

  private async run(req: Request, action: CommentNotice['action'], write: () => Promise<Written>): Promise<CommentResult> {
    checkMutationKey(req)
    if (this.draining) throw new TaskSyncError('unavailable', 'the server is shutting down; retry on another instance')
    if (req.principal.role === 'viewer') throw new TaskSyncError('forbidden', 'a viewer may read comments but not change them')
    const work = this.commit(req, action, write)
    this.inFlight.add(work)
    try {
      return await work
    } finally {
      this.inFlight.delete(work)
    }
  }

  /** Binds the request's clientId to the caller's device (or refuses one bound to another), right before the write. */
  private async bind(req: Request): Promise<void> {
    if (req.clientId !== null) await this.opts.bindClient(req.principal, req.clientId)
  }

  private async commit(req: Request, action: CommentNotice['action'], write: () => Promise<Written>): Promise<CommentResult> {
    try {
      const resent = await this.resent(req, action)
      if (resent) {
        // The record is there, so the binding is: this only checks that it is the caller's.
        await this.bind(req)
        return resent
      }
      let written: Written
      try {
        written = await write()
      } catch (err) {
        // A racing resend of the same (clientId, seq) committed first: this write then hit the
        // primary key, or found its comment already there (create) or already gone (delete).
        // Answer as a resend when the record is now there; otherwise the error stands.
        const again = isLostRace(err) || isRaceVerdict(err) ? await this.resent(req, action) : null
        if (again) return again
        throw err
      }
      const { comment, projectId } = written
      const notice: CommentNotice = {
        kind: 'comment',
        from: this.opts.instanceId,
        orgId: req.principal.orgId,
        taskId: comment.taskId,
        projectId,
        comment,
        action,
        clientId: req.clientId,
        seq: req.seq,
      }
      this.announcer.announce(notice)
      return { comment, duplicate: false }
    } catch (err) {
      throw asUnavailable(err, this.opts.logger)
    }
  }

  /** The answer to a resend of an already committed (clientId, seq), or null. */
  private async resent(req: Request, action: CommentNotice['action']): Promise<CommentResult | null> {
    if (req.clientId === null || req.seq === null) return null
    const record = await this.opts.store.findMutation(req.principal.orgId, req.clientId, req.seq)
    if (!record) return null
    const other =
      record.kind !== 'comment' ||
      record.commentId !== req.commentId ||
      record.orgId !== req.principal.orgId ||
      (record.digest !== null && record.digest !== keyOf(req, action).digest)
    if (other) {
      // Another writer shares the clientId (PROTOCOL.md section 3): not a resend, nothing committed.
      throw new TaskSyncError('already_exists', `seq ${req.seq} of client ${req.clientId} was already used by another mutation`)
    }
    const comment = await this.opts.store.loadComment(req.principal.orgId, req.commentId)
    if (!comment) throw new TaskSyncError('not_found', `comment ${req.commentId} not found`)
    return { comment, duplicate: true }
  }

  private checkBody(body: unknown): string {
    if (typeof body !== 'string') throw new InvalidOpError('body', 'must be a string')
    const problem = textProblem(body)
    if (problem) throw new InvalidOpError('body', problem)
    if (body.trim() === '') throw new InvalidOpError('body', 'must not be empty')
    let n = 0
    for (const _ of body) n++
    if (n > this.opts.bodyMax) throw new InvalidOpError('body', `is ${n} code points, over the limit of ${this.opts.bodyMax}`)
    return body
  }

  /** Checks the task exists and is live; returns its project (for the notice's routing). */
  private async liveTask(orgId: string, taskId: string): Promise<string | null> {
    const task = await this.opts.store.loadTask(orgId, taskId)
    if (!task) throw new TaskSyncError('not_found', `task ${taskId} not found`)
    if (task.deleted) throw new TaskSyncError('task_deleted', `task ${taskId} is deleted`, { rev: task.rev })
    return task.projectId
  }

  /** The comment to change: it must exist (in the named task, if any), be live, and its task too. */
  private async liveComment(req: { principal: Principal; commentId: string; taskId?: string }): Promise<Written> {
    const c = await this.opts.store.loadComment(req.principal.orgId, req.commentId)
    if (!c || (req.taskId !== undefined && c.taskId !== req.taskId) || c.deleted) {
      throw new TaskSyncError('not_found', `comment ${req.commentId} not found`)
    }
    return { comment: c, projectId: await this.liveTask(req.principal.orgId, c.taskId) }
  }
}

/** The mutation key a comment change records: (clientId, seq) and the digest of what it does. */
function keyOf(req: Request, action: CommentNotice['action']): MutationKey {
  if (req.clientId === null || req.seq === null) return { clientId: null, seq: null, digest: null }
  const r = req as Partial<CommentCreateRequest> & Request
  const form: MutationForm =
    action === 'create'
      ? { kind: 'comment', action, commentId: req.commentId, taskId: r.taskId!, parentId: r.parentId ?? null, body: r.body! }
      : action === 'edit'
        ? { kind: 'comment', action, commentId: req.commentId, body: r.body! }
        : { kind: 'comment', action, commentId: req.commentId }
  return { clientId: req.clientId, seq: req.seq, digest: mutationDigest(form) }
}
