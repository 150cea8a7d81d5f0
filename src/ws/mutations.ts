/**
 * `create`, `op` and `comment`: submitted through the sequencer (or the comment
 * service) with the socket's clientId and the message's seq, registered in the
 * socket's in-flight acks before, answered after the commit as acks.ts decides
 * (now, or by the task's feed in rev order in place of the echo).
 */
import type { ErrorCode } from '../protocol/errors.js'
import type { CommentMessage, CreateMessage, OpMessage } from '../protocol/messages.js'
import type { TaskOp } from '../domain/types.js'
import type { CommitResult } from '../sequencer/requests.js'
import type { CommentsPort, SequencerPort } from './ports.js'
import { InflightAcks } from './acks.js'
import type { Session } from './session.js'

/** What the mutation handlers need besides the socket and its org's router. */
export interface MutationContext {
  sequencer: Pick<SequencerPort, 'create' | 'submit'>
  comments: Pick<CommentsPort, 'create' | 'edit' | 'delete'>
  /** Time from receiving a create or op to its commit. */
  ackLatency(seconds: number): void
  wireError(err: unknown): { code: ErrorCode; message: string }
}

export function handleCreate(ctx: MutationContext, session: Session, msg: CreateMessage): Promise<void> {
  return commit(ctx, session, msg.taskId, msg.seq, () =>
    ctx.sequencer.create({
      principal: session.principal,
      taskId: msg.taskId,
      projectId: msg.projectId,
      clientId: session.clientId,
      seq: msg.seq,
      init: msg.task,
    }),
  )
}

export function handleOp(ctx: MutationContext, session: Session, msg: OpMessage): Promise<void> {
  return commit(ctx, session, msg.taskId, msg.seq, () =>
    ctx.sequencer.submit({
      principal: session.principal,
      taskId: msg.taskId,
      clientId: session.clientId,
      seq: msg.seq,
      baseRev: msg.baseRev,
      op: msg.op as TaskOp,
    }),
  )
}

/** Registers the seq as in flight, commits, then acks (now, or through the feed). */
async function commit(ctx: MutationContext, session: Session, taskId: string, seq: number, run: () => Promise<CommitResult>): Promise<void> {
  const acks = (session.acks ??= new InflightAcks(session.clientId!))
  const entry = acks.begin(seq, taskId, false)
  if (!entry) return session.sendError('bad_request', `seq ${seq} is already in flight on this socket`, { ref: taskId, seq })
  const started = performance.now()
  let result: CommitResult
  try {
    result = await run()
  } catch (err) {
    acks.refused(seq, entry)
    const { code, message } = ctx.wireError(err)
    // PROTOCOL §3: a different mutation under a used (clientId, seq) names the seq in `ref`.
    return session.sendError(code, message, { ref: code === 'already_exists' ? seq : taskId, seq })
  }
  ctx.ackLatency((performance.now() - started) / 1000)
  const ack = acks.committed(seq, entry, result, () => session.router.positionOf(session, taskId))
  if (ack) session.send(ack)
}

export async function handleComment(ctx: MutationContext, session: Session, msg: CommentMessage): Promise<void> {
  const base = { principal: session.principal, commentId: msg.commentId, clientId: session.clientId, seq: msg.seq }
  if (msg.action !== 'delete' && msg.body === undefined) {
    return session.sendError('bad_request', `invalid comment: body is required to ${msg.action}`, { ref: msg.taskId, seq: msg.seq })
  }
  const acks = (session.acks ??= new InflightAcks(session.clientId!))
  const entry = acks.begin(msg.seq, msg.taskId, true)
  if (!entry) return session.sendError('bad_request', `seq ${msg.seq} is already in flight on this socket`, { ref: msg.taskId, seq: msg.seq })
  try {
    if (msg.action === 'create') {
      await ctx.comments.create({ ...base, taskId: msg.taskId, body: msg.body!, parentId: msg.parentId })
    } else if (msg.action === 'edit') {
      await ctx.comments.edit({ ...base, taskId: msg.taskId, body: msg.body! })
    } else {
      await ctx.comments.delete({ ...base, taskId: msg.taskId })
    }
  } catch (err) {
    acks.refused(msg.seq, entry)
    const { code, message } = ctx.wireError(err)
    return session.sendError(code, message, { ref: code === 'already_exists' ? msg.seq : msg.taskId, seq: msg.seq })
  }
  // The comment's fan-out may already have acked it in place of the echo.
  const ack = acks.commentCommitted(msg.seq, entry, msg.commentId)
  if (ack) session.send(ack)
}
