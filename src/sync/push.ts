/**
 * Push: an offline queue replayed in one request. Mutations run one after another
 * through the same sequencer and comment service as socket mutations, so a push
 * orders, merges and deduplicates ((clientId, seq)) exactly like a socket.
 * A mutation the rules refuse is `rejected` and the next one runs; a storage
 * failure stops the batch: what was committed before it stays committed (a
 * resend acks it as `duplicate`), and nothing after it was tried.
 */
import { TaskSyncError, type ErrorCode } from '../protocol/errors.js'
import type { TaskInit } from '../protocol/messages.js'
import type { PushMutation, PushResult } from '../protocol/sync.js'
import type { TaskOp } from '../domain/types.js'
import type { Principal } from '../auth/principal.js'
import type { CommitResult, CreateTaskRequest, SubmitOpRequest } from '../sequencer/requests.js'
import type { CommentCreateRequest, CommentDeleteRequest, CommentEditRequest, CommentResult } from '../comments/types.js'

/** What push needs of the sequencer and the comment service. */
export interface PushServices {
  sequencer: {
    bindClient(principal: Principal, clientId: string): Promise<unknown>
    create(req: CreateTaskRequest): Promise<CommitResult>
    submit(req: SubmitOpRequest): Promise<CommitResult>
  }
  comments: {
    create(req: CommentCreateRequest): Promise<CommentResult>
    edit(req: CommentEditRequest): Promise<CommentResult>
    delete(req: CommentDeleteRequest): Promise<CommentResult>
  }
}

/** Codes that mean "this mutation is refused", as opposed to "the server could not try". */
const STORAGE_CODES: ReadonlySet<ErrorCode> = new Set(['unavailable', 'internal'])

/**
 * Checks what the schema cannot: each kind carries its fields, and seqs strictly
 * increase. Throws bad_request naming the mutation; nothing is applied then.
 */
export function checkBatch(mutations: PushMutation[]): void {
  mutations.forEach((m, i) => {
    const at = `mutations[${i}] (seq ${m.seq})`
    if (i > 0 && m.seq <= mutations[i - 1].seq) throw new TaskSyncError('bad_request', `${at}: seq must increase within a push`)
    if (m.kind === 'create' && !m.task) throw new TaskSyncError('bad_request', `${at}: a create needs task`)
    if (m.kind === 'op' && (!m.op || m.baseRev === undefined)) throw new TaskSyncError('bad_request', `${at}: an op needs op and baseRev`)
    if (m.kind === 'comment') {
      const c = m.comment
      if (!c) throw new TaskSyncError('bad_request', `${at}: a comment mutation needs comment`)
      if (c.action !== 'delete' && c.body === undefined) throw new TaskSyncError('bad_request', `${at}: comment ${c.action} needs body`)
    }
  })
}

/** Outcome of a push: every result in request order, or the results before a storage failure. */
export interface PushOutcome {
  results: PushResult[]
  /** Set when the batch stopped at a storage failure; `results` then holds what came before it. */
  failure?: unknown
}

/**
 * Applies the mutations in order. The clientId must be bound to the caller's
 * device (else forbidden, thrown before anything runs).
 */
export async function pushMutations(
  services: PushServices,
  principal: Principal,
  clientId: string,
  mutations: PushMutation[],
): Promise<PushOutcome> {
  await services.sequencer.bindClient(principal, clientId)
  const results: PushResult[] = []
  for (const m of mutations) {
    try {
      results.push(await applyOne(services, principal, clientId, m))
    } catch (err) {
      if (err instanceof TaskSyncError && !STORAGE_CODES.has(err.code)) {
        results.push({ seq: m.seq, status: 'rejected', error: { code: err.code, message: err.message } })
        continue
      }
      return { results, failure: err }
    }
  }
  return { results }
}

async function applyOne(services: PushServices, principal: Principal, clientId: string, m: PushMutation): Promise<PushResult> {
  const base = { principal, taskId: m.taskId, clientId, seq: m.seq }
  if (m.kind === 'create') {
    const task = m.task as TaskInit
    const r = await services.sequencer.create({ ...base, projectId: task.projectId, init: task })
    return taskResult(m.seq, r)
  }
  if (m.kind === 'op') {
    const r = await services.sequencer.submit({ ...base, baseRev: m.baseRev!, op: m.op as TaskOp })
    return taskResult(m.seq, r)
  }
  const c = m.comment!
  let r: CommentResult
  if (c.action === 'create') {
    r = await services.comments.create({ ...base, commentId: c.commentId, body: c.body!, parentId: c.parentId ?? null })
  } else if (c.action === 'edit') {
    r = await services.comments.edit({ ...base, commentId: c.commentId, body: c.body! })
  } else {
    r = await services.comments.delete({ ...base, commentId: c.commentId })
  }
  return { seq: m.seq, status: r.duplicate ? 'duplicate' : 'applied', commentId: r.comment.id }
}

/** As the socket ack: `noop` when the op committed nothing (a resend of such an op included). */
function taskResult(seq: number, r: CommitResult): PushResult {
  const status = r.duplicate ? 'duplicate' : 'applied'
  return r.noop ? { seq, status, rev: r.rev, noop: true } : { seq, status, rev: r.rev }
}
