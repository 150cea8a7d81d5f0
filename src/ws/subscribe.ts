/**
 * `subscribe` and `unsubscribe`. A task subscription joins the task's feed first
 * (hold), then reads the snapshot or the missed ops, then releases: ops committed
 * during the read are delivered once, after it (guarantee 4).
 */
import type { TaskSnapshot } from '../domain/types.js'
import type { ErrorCode } from '../protocol/errors.js'
import type { SubscribeMessage, UnsubscribeMessage } from '../protocol/messages.js'
import type { SyncLogEntry } from '../storage/sync/log.js'
import type { ReadPort, SequencerPort } from './ports.js'
import type { Session } from './session.js'

/** Task reads served at once for one subscribe (bounded so one socket cannot hog the pool). */
const CONCURRENCY = 8
/** Tasks one socket may follow by id (each costs a feed membership). */
export const MAX_TASKS_PER_SOCKET = 10_000

/** Takes one socket resume for the sync log; must not throw or block (it runs after the reply). */
export type ResumeRecorder = (entry: SyncLogEntry) => void

/** What `subscribe` needs besides the socket and its org's router. */
export interface SubscribeContext {
  reads: Pick<SequencerPort, 'snapshots' | 'opsSince'> & Pick<ReadPort, 'projectExists'>
  /** Most ops a `since` may be behind and still be replayed. */
  replayWindowOps: number
  /** Records every `subscribe` carrying `since` (plugin.ts: the sync log). */
  recordResume?: ResumeRecorder
  wireError(err: unknown): { code: ErrorCode; message: string }
}

/** What the tasks of one subscribe were sent (for the sync log). */
interface Served {
  ops: number
  snapshots: number
  syncRequired: number
}

export async function handleSubscribe(ctx: SubscribeContext, session: Session, msg: SubscribeMessage): Promise<void> {
  const started = performance.now()
  const since = msg.since ?? {}
  const taskIds = [...new Set([...(msg.taskIds ?? []), ...Object.keys(since)])]
  if ((session.tasks?.size ?? 0) + taskIds.length > MAX_TASKS_PER_SOCKET) {
    return session.sendError('too_large', `a socket follows at most ${MAX_TASKS_PER_SOCKET} tasks by id; unsubscribe some or subscribe by project`)
  }
  const projectIds: string[] = []
  const router = session.router
  for (const projectId of new Set(msg.projectIds ?? [])) {
    let exists: boolean
    try {
      exists = await ctx.reads.projectExists(session.orgId, projectId)
    } catch (err) {
      const { code, message } = ctx.wireError(err)
      session.sendError(code, message, { ref: projectId })
      continue
    }
    if (!exists) {
      session.sendError('not_found', `project ${projectId} not found`, { ref: projectId })
      continue
    }
    router.addProject(session, projectId)
    projectIds.push(projectId)
  }
  if (msg.all === true) router.addAll(session)

  const subscribed: string[] = []
  const served: Served = { ops: 0, snapshots: 0, syncRequired: 0 }
  // Join every feed first (hold), then read all the snapshots in one query: ops
  // committed meanwhile wait in the feeds and are delivered after each task's read.
  const joined = taskIds.map((taskId) => join(session, taskId))
  let snapshots: Map<string, TaskSnapshot> | null
  try {
    snapshots = taskIds.length ? await ctx.reads.snapshots(session.orgId, taskIds) : new Map()
  } catch (err) {
    const { code, message } = ctx.wireError(err)
    for (let i = 0; i < taskIds.length; i++) {
      joined[i].leave()
      session.sendError(code, message, { ref: taskIds[i] })
    }
    snapshots = null
  }
  let next = 0
  const worker = async () => {
    while (snapshots && next < taskIds.length && !session.closed) {
      const i = next++
      const taskId = taskIds[i]
      if (await serveTask(ctx, session, taskId, snapshots.get(taskId) ?? null, joined[i], since[taskId], served)) subscribed.push(taskId)
    }
  }
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, taskIds.length) }, worker))
  if (!session.closed) {
    // In request order, whatever order the reads finished in.
    const ok = new Set(subscribed)
    session.send({ type: 'subscribed', taskIds: taskIds.filter((id) => ok.has(id)), projectIds, all: msg.all === true })
  }
  if (msg.since && Object.keys(msg.since).length > 0) recordResume(ctx, session, taskIds.length, served, performance.now() - started)
}

/** One sync log entry per resuming subscribe, after its reply (a cut-short one too: it says how far it got). */
function recordResume(ctx: SubscribeContext, session: Session, tasks: number, served: Served, durationMs: number): void {
  const record = ctx.recordResume
  if (!record) return
  const { orgId, userId, deviceId } = session.principal
  record({ orgId, userId, deviceId, clientId: session.clientId, kind: 'resume', counts: { tasks, ...served }, durationMs })
}

/** Joins the task's feed, holding what it delivers until the read is served; answers how to leave it again. */
function join(session: Session, taskId: string): Joined {
  const router = session.router
  const feed = router.feedFor(taskId)
  ;(session.tasks ??= new Set()).add(taskId)
  feed.hold(session)
  return {
    feed,
    leave: () => {
      session.tasks?.delete(taskId)
      router.leaveFeed(session, feed)
    },
  }
}

interface Joined {
  feed: ReturnType<Session['router']['feedFor']>
  leave: () => void
}

/**
 * Serves one joined task from its snapshot read after the join: replays rev >
 * since from the op log when it still holds all of them within the replay
 * window, else sends the snapshot. A missing task, or one of another
 * organization, is `not_found`; a deleted one is `task_deleted`; a `since`
 * ahead of the task is `sync_required`. None of those is subscribed.
 */
async function serveTask(
  ctx: SubscribeContext,
  session: Session,
  taskId: string,
  snapshot: TaskSnapshot | null,
  { feed, leave }: Joined,
  since: number | undefined,
  served: Served,
): Promise<boolean> {
  const { reads } = ctx
  try {
    if (session.closed) return false
    if (!snapshot) {
      leave()
      session.sendError('not_found', `task ${taskId} not found`, { ref: taskId })
      return false
    }
    if (snapshot.deleted) {
      leave()
      session.send({ type: 'task_deleted', taskId, rev: snapshot.rev })
      return false
    }
    const rev = snapshot.rev
    if (since !== undefined && since > rev) {
      leave()
      served.syncRequired++
      session.send({ type: 'sync_required', taskId, reason: `since ${since} is ahead of the task's rev ${rev}` })
      return false
    }
    let replayed = since === rev
    if (since !== undefined && !replayed && rev - since <= ctx.replayWindowOps) {
      const ops = await reads.opsSince(session.orgId, taskId, since + 1, rev - since)
      if (session.closed) return false
      // All of them or none: never a partial replay.
      if (ops.length === rev - since && ops.every((e, i) => e.rev === since + 1 + i)) {
        for (const event of ops) session.receive({ event })
        served.ops += ops.length
        replayed = true
      }
    }
    if (!replayed) {
      served.snapshots++
      session.send({ type: 'snapshot', taskId, rev, task: snapshot })
    }
    feed.release(session, rev, snapshot.projectId)
    // Acks of this socket's own ops up to `rev` were covered by the read: the feed will not deliver them.
    session.flushAcks(taskId, rev)
    return true
  } catch (err) {
    leave()
    const { code, message } = ctx.wireError(err)
    session.sendError(code, message, { ref: taskId })
    return false
  }
}

export async function handleUnsubscribe(session: Session, msg: UnsubscribeMessage): Promise<void> {
  const taskIds = [...new Set(msg.taskIds ?? [])]
  const projectIds = [...new Set(msg.projectIds ?? [])]
  const router = session.router
  for (const taskId of taskIds) session.tasks?.delete(taskId)
  for (const projectId of projectIds) router.removeProject(session, projectId)
  if (msg.all === true) router.removeAll(session)
  router.pruneSession(session, projectIds.length > 0 || msg.all === true ? null : taskIds)
  session.send({ type: 'unsubscribed', taskIds, projectIds, all: msg.all === true })
}
