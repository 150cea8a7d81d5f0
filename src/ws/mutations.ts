/**
 * `create`, `op` and `comment`: submitted through the sequencer (or the comment
 * service) with the socket's clientId and the message's seq. The ack is sent only
 * after the commit; when this socket is subscribed to the task, the feed sends it
 * in rev order in place of the op echo, so the client never sees an op of a later
 * rev before the ack of an earlier one.
 */
import type { CommentMessage, CreateMessage, OpMessage } from '../protocol/messages.js'
import type { TaskOp } from '../domain/types.js'
import type { CommitResult } from '../sequencer/types.js'
import type { Session } from './session.js'
import { HOLD } from './task-feed.js'

export async function handleCreate(session: Session, msg: CreateMessage): Promise<void> {
  await commit(session, msg.taskId, msg.seq, () =>
    session.gateway.deps.sequencer.create({
      principal: session.principal,
      taskId: msg.taskId,
      projectId: msg.projectId,
      clientId: session.clientId,
      seq: msg.seq,
      init: msg.task,
    }),
  )
}

export async function handleOp(session: Session, msg: OpMessage): Promise<void> {
  await commit(session, msg.taskId, msg.seq, () =>
    session.gateway.deps.sequencer.submit({
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
async function commit(session: Session, taskId: string, seq: number, run: () => Promise<CommitResult>): Promise<void> {
  const inflight = (session.inflight ??= new Map())
  if (inflight.has(seq)) return session.sendError('bad_request', `seq ${seq} is already in flight on this socket`, { ref: taskId, seq })
  const pending = { taskId, rev: 0, comment: false }
  inflight.set(seq, pending)
  const started = performance.now()
  let result: CommitResult
  try {
    result = await run()
  } catch (err) {
    inflight.delete(seq)
    const { code, message } = session.gateway.wireError(err)
    return session.sendError(code, message, { ref: taskId, seq })
  }
  session.gateway.metrics.ackLatency((performance.now() - started) / 1000)
  if (inflight.get(seq) !== pending) return // the feed already sent the ack, in order
  const pos = session.router.feeds.get(taskId)?.members.get(session)
  // A commit this socket's stream has not reached yet (a resend that raced its first attempt on
  // another instance included): the feed acks it in the op's place, never ahead of earlier revs.
  if (!result.noop && pos !== undefined && (pos === HOLD || pos < result.rev)) {
    pending.rev = result.rev // the feed acks when it reaches this rev
    return
  }
  inflight.delete(seq)
  // An op that is identity after transform committed nothing (now, or when first sent): the ack says noop.
  session.sendAck(taskId, seq, result.rev, result.noop)
}

export async function handleComment(session: Session, msg: CommentMessage): Promise<void> {
  const { comments } = session.gateway.deps
  const base = { principal: session.principal, commentId: msg.commentId, clientId: session.clientId, seq: msg.seq }
  if (msg.action !== 'delete' && msg.body === undefined) {
    return session.sendError('bad_request', `invalid comment: body is required to ${msg.action}`, { ref: msg.taskId, seq: msg.seq })
  }
  const inflight = (session.inflight ??= new Map())
  if (inflight.has(msg.seq)) return session.sendError('bad_request', `seq ${msg.seq} is already in flight on this socket`, { ref: msg.taskId, seq: msg.seq })
  const pending = { taskId: msg.taskId, rev: 0, comment: true }
  inflight.set(msg.seq, pending)
  try {
    if (msg.action === 'create') {
      await comments.create({ ...base, taskId: msg.taskId, body: msg.body!, parentId: msg.parentId })
    } else if (msg.action === 'edit') {
      await comments.edit({ ...base, taskId: msg.taskId, body: msg.body! })
    } else {
      await comments.delete({ ...base, taskId: msg.taskId })
    }
  } catch (err) {
    inflight.delete(msg.seq)
    const { code, message } = session.gateway.wireError(err)
    return session.sendError(code, message, { ref: msg.taskId, seq: msg.seq })
  }
  // The comment's fan-out may already have acked it in place of the echo.
  if (inflight.get(msg.seq) !== pending) return
  inflight.delete(msg.seq)
  session.send({ type: 'ack', taskId: msg.taskId, seq: msg.seq, commentId: msg.commentId })
}
