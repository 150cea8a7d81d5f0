/**
 * Everything one instance delivers for one organization: one bus subscription
 * (`org:<orgId>`, held while the org has sockets here), one TaskFeed per task
 * somebody here follows, the project and org-wide subscribers, and presences.
 * The bus handler only parses and hands over; feeds order, sockets queue.
 */
import type { CommentNotice, CommitNotice, OrgNotice } from '../sequencer/types.js'
import { orgChannel } from '../sequencer/types.js'
import type { TaskSnapshot } from '../domain/types.js'
import type { Comment, OpEvent } from '../protocol/messages.js'
import { HOLD, TaskFeed, type FeedEntry, type FeedHost } from './task-feed.js'
import { PresenceBoard, type PresenceNotice } from './presence.js'
import type { Session } from './session.js'
import type { Gateway } from './gateway.js'
import { encode } from './wire.js'

type Arrival = OrgNotice | PresenceNotice

/** TASKSYNC_FAULT=drop-publication (test-only): this process has dropped its one publication. */
let publicationDropped = false

const KIND_KEY = '{"kind":"'
const FROM_KEY = '","from":'

/** A feed entry that may carry the task's snapshot after a move (for sockets it moved into scope). */
interface RoutedEntry extends FeedEntry {
  prevProjectId?: string | null
  snapshot?: TaskSnapshot
}

export class OrgRouter implements FeedHost<Session> {
  readonly feeds = new Map<string, TaskFeed<Session>>()
  readonly presence = new PresenceBoard()
  private readonly projectSubs = new Map<string, Set<Session>>()
  private readonly allSubs = new Set<Session>()
  /** Sockets of this org on this instance; the router is dropped a while after it reaches 0. */
  sessions = 0
  idleSince = 0
  private busOff: Promise<(() => Promise<void>) | null> | null = null
  /** `","from":"<this instance>",` as this instance's publications carry it. */
  private readonly ownFrom: string

  constructor(
    readonly orgId: string,
    private readonly gateway: Gateway,
  ) {
    this.ownFrom = `${FROM_KEY}${JSON.stringify(gateway.deps.instanceId)},`
  }

  attach(): void {
    this.sessions++
    this.busOff ??= this.gateway.deps.bus.subscribe(orgChannel(this.orgId), this.onBus).catch((err) => {
      // The feeds' probe repairs what this costs; the next attach tries again.
      this.gateway.deps.log.warn({ err, orgId: this.orgId }, 'bus subscribe failed')
      this.busOff = null
      return null
    })
  }

  /** Removes a closed socket from everything here and clears its presences for others. */
  detach(session: Session): void {
    this.sessions--
    if (this.sessions === 0) this.idleSince = Date.now()
    this.allSubs.delete(session)
    for (const p of session.projects ?? []) this.projectSubs.get(p)?.delete(session)
    this.pruneSession(session, session.all || session.projects?.size ? null : [...(session.tasks ?? [])], true)
    for (const taskId of session.presence ?? []) {
      const projectId = this.feeds.get(taskId)?.projectId
      void this.sharePresence({
        kind: 'presence',
        from: this.gateway.deps.instanceId,
        orgId: this.orgId,
        taskId,
        projectId,
        userId: session.principal.userId,
        clientId: session.clientId!,
        state: null,
      }).catch(() => {})
    }
  }

  /** Unsubscribes from the bus (the org has had no socket here for a while). */
  async close(): Promise<void> {
    for (const feed of this.feeds.values()) feed.close()
    this.feeds.clear()
    const off = await this.busOff
    this.busOff = null
    await off?.().catch(() => {})
  }

  private readonly onBus = (payload: string): void => {
    // This instance's own commits were delivered from the local listener already: skip
    // their echo before parsing (one JSON.parse per op saved). Publishers write `kind`
    // first and `from` second, so this prefix is structural, never inside a value.
    const from = payload.indexOf(FROM_KEY)
    if (from > 0 && from < 24 && payload.startsWith(KIND_KEY) && payload.startsWith(this.ownFrom, from)) return
    let notice: Arrival & { from?: string }
    try {
      notice = JSON.parse(payload)
    } catch {
      return
    }
    // This instance's own commits were delivered from the local listener already.
    if (notice.from === this.gateway.deps.instanceId) return
    if (notice.kind === 'op' && this.gateway.settings.dropPublication && !publicationDropped && notice.rev > 1 && this.feeds.get(notice.taskId)?.members.size) {
      // The deliberate bug: one publication lost for this instance's sockets, and never repaired.
      publicationDropped = true
      return this.ingestCommit(notice, true)
    }
    this.route(notice)
  }

  route(notice: Arrival): void {
    if (notice.kind === 'comment') this.deliverComment(notice)
    else if (notice.kind === 'presence') this.deliverPresence(notice)
    else this.ingestCommit(notice)
  }

  ingestCommit(n: CommitNotice, lost?: true): void {
    let feed = this.feeds.get(n.taskId)
    if (!feed) {
      // Nobody here follows the task: keep no state for it.
      if (!this.scopeWants(n.projectId) && !(n.prevProjectId !== undefined && this.scopeWants(n.prevProjectId))) return
      feed = this.feedFor(n.taskId)
    }
    const entry: RoutedEntry = { event: n.event, projectId: n.projectId }
    if (n.prevProjectId !== undefined) entry.prevProjectId = n.prevProjectId
    if (n.snapshot) entry.snapshot = n.snapshot
    if (lost) entry.lost = lost
    feed.ingest(entry)
  }

  feedFor(taskId: string): TaskFeed<Session> {
    let feed = this.feeds.get(taskId)
    if (!feed) this.feeds.set(taskId, (feed = new TaskFeed<Session>(this.orgId, taskId, this, this.gateway.feedTiming)))
    return feed
  }

  /** A socket stops following a task (failed or refused subscribe, unsubscribe). */
  leaveFeed(session: Session, feed: TaskFeed<Session>): void {
    const wasHeld = feed.members.get(session) === HOLD
    feed.remove(session)
    session.flushAcks(feed.taskId)
    // Still covered by a project or org subscription, but its stream was interrupted here.
    if (wasHeld && session.covers(feed.taskId, feed.projectId)) {
      session.send({ type: 'sync_required', taskId: feed.taskId, reason: 'the subscription was interrupted; catch up and resubscribe' })
    }
    this.dropIfIdle(feed)
  }

  /** Removes the socket from feeds it no longer covers (all feeds, or only `taskIds`). */
  pruneSession(session: Session, taskIds: string[] | null, closing = false): void {
    const feeds = taskIds ? taskIds.map((id) => this.feeds.get(id)).filter((f) => f !== undefined) : [...this.feeds.values()]
    for (const feed of feeds) {
      if (!feed.members.has(session)) continue
      if (!closing && session.covers(feed.taskId, feed.projectId)) continue
      feed.remove(session)
      if (!closing) session.flushAcks(feed.taskId)
      this.dropIfIdle(feed)
    }
  }

  addProject(session: Session, projectId: string): void {
    let set = this.projectSubs.get(projectId)
    if (!set) this.projectSubs.set(projectId, (set = new Set()))
    set.add(session)
    ;(session.projects ??= new Set()).add(projectId)
  }

  removeProject(session: Session, projectId: string): void {
    const set = this.projectSubs.get(projectId)
    set?.delete(session)
    if (set?.size === 0) this.projectSubs.delete(projectId)
    session.projects?.delete(projectId)
  }

  addAll(session: Session): void {
    this.allSubs.add(session)
    session.all = true
  }

  removeAll(session: Session): void {
    this.allSubs.delete(session)
    session.all = false
  }

  /** Delivers a presence here and publishes it to the other instances. */
  async sharePresence(notice: PresenceNotice): Promise<void> {
    this.deliverPresence(notice)
    await this.gateway.deps.bus.publish(orgChannel(this.orgId), JSON.stringify(notice))
  }

  /** Clears presences not refreshed within the TTL (each instance on its own). */
  expirePresence(now: number): void {
    if (this.presence.size === 0) return
    for (const notice of this.presence.expire(now, this.gateway.settings.presenceTtlMs)) this.deliverPresence(notice)
  }

  /** Feeds whose latest rev is worth probing: someone follows them from a known rev. */
  *probeTargets(): Iterable<TaskFeed<Session>> {
    for (const feed of this.feeds.values()) if (feed.head >= 0 && feed.members.size > 0) yield feed
  }

  dropIfIdle(feed: TaskFeed<Session>): void {
    if (!feed.idle || this.feeds.get(feed.taskId) !== feed) return
    feed.close()
    this.feeds.delete(feed.taskId)
  }

  // ── FeedHost ──

  opsSince(feed: TaskFeed<Session>, fromRev: number, limit: number): Promise<OpEvent[]> {
    return this.gateway.deps.sequencer.opsSince(this.orgId, feed.taskId, fromRev, limit)
  }

  /** Sockets whose project or org subscription covers this op join the feed at it. */
  beforeDeliver(feed: TaskFeed<Session>, entry: RoutedEntry, prev: string | null | undefined): void {
    if (this.allSubs.size === 0 && this.projectSubs.size === 0) return
    const rev = entry.event.rev
    const next = entry.projectId ?? null
    const before = entry.prevProjectId !== undefined ? entry.prevProjectId : prev
    const moved = rev > 1 && before !== undefined && before !== next
    const adopt = (s: Session) => {
      if (feed.members.has(s)) return
      // Moved into this socket's scope: it does not have the task, so it gets the snapshot.
      if (moved && !s.all && !(before !== null && s.projects?.has(before))) return this.sendMovedIn(feed, s, entry)
      feed.members.set(s, rev - 1)
    }
    for (const s of this.allSubs) adopt(s)
    if (next !== null) for (const s of this.projectSubs.get(next) ?? []) adopt(s)
    if (moved && before !== null) for (const s of this.projectSubs.get(before) ?? []) adopt(s)
  }

  /** After a move out of a project: its subscribers got the move, and nothing more. */
  afterDeliver(feed: TaskFeed<Session>, entry: RoutedEntry, prev: string | null | undefined): void {
    const before = entry.prevProjectId !== undefined ? entry.prevProjectId : prev
    if (before === undefined || before === entry.projectId) return
    for (const s of feed.members.keys()) {
      if (s.covers(feed.taskId, entry.projectId)) continue
      feed.remove(s)
      s.flushAcks(feed.taskId)
    }
  }

  lost(feed: TaskFeed<Session>, session: Session): void {
    session.tasks?.delete(feed.taskId)
    session.flushAcks(feed.taskId)
    session.send({ type: 'sync_required', taskId: feed.taskId, reason: 'missed ops are no longer in the log; catch up over REST' })
  }

  repairFailed(feed: TaskFeed<Session>, err: unknown): void {
    this.gateway.deps.log.warn({ err, taskId: feed.taskId }, 'gap repair failed; retrying')
  }

  // ── delivery of comments and presence ──

  private sendMovedIn(feed: TaskFeed<Session>, s: Session, entry: RoutedEntry): void {
    if (entry.snapshot) {
      feed.members.set(s, entry.event.rev)
      s.send({ type: 'snapshot', taskId: feed.taskId, rev: entry.event.rev, task: entry.snapshot })
      return
    }
    feed.members.set(s, HOLD)
    this.gateway.deps.sequencer.snapshot(this.orgId, feed.taskId).then(
      (snapshot) => {
        if (feed.members.get(s) !== HOLD) return
        if (!snapshot) return this.leaveFeed(s, feed)
        s.send({ type: 'snapshot', taskId: feed.taskId, rev: snapshot.rev, task: snapshot })
        feed.release(s, snapshot.rev)
      },
      () => {
        if (feed.members.get(s) === HOLD) this.lost(feed, s)
        feed.remove(s)
      },
    )
  }

  private scopeWants(projectId: string | null | undefined): boolean {
    return this.allSubs.size > 0 || (projectId != null && (this.projectSubs.get(projectId)?.size ?? 0) > 0)
  }

  /** Calls `fn` once for every socket here covering the task (by id, project or org). */
  private forEachCovering(taskId: string, projectId: string | null | undefined, fn: (s: Session) => void): void {
    const members = this.feeds.get(taskId)?.members
    if (members) for (const s of members.keys()) fn(s)
    for (const s of this.allSubs) if (!members?.has(s)) fn(s)
    if (projectId != null) for (const s of this.projectSubs.get(projectId) ?? []) if (!members?.has(s) && !s.all) fn(s)
  }

  /** Project subscribers are found by the notice's projectId; a notice without one (an older publisher) costs a read. */
  private deliverComment(n: CommentNotice): void {
    const known = n.projectId !== undefined ? n.projectId : this.feeds.get(n.taskId)?.projectId
    let frame: Buffer | undefined
    const send = (s: Session) => {
      if (n.clientId !== null && n.seq !== null && s.clientId === n.clientId) {
        const pending = s.inflight?.get(n.seq)
        if (pending?.comment) {
          // The submitter gets its ack here instead of an echo.
          s.inflight!.delete(n.seq)
          return s.send({ type: 'ack', taskId: n.taskId, seq: n.seq, commentId: n.comment.id })
        }
      }
      s.sendFrame((frame ??= encode({ type: 'comment', taskId: n.taskId, comment: n.comment as Comment })))
    }
    this.forEachCovering(n.taskId, known, send)
    if (known === undefined && this.projectSubs.size > 0) {
      // The notice did not say which project the task is in: look it up for project subscribers.
      this.gateway.deps.sequencer.snapshot(this.orgId, n.taskId).then(
        (snapshot) => {
          const members = this.feeds.get(n.taskId)?.members
          if (snapshot?.projectId) for (const s of this.projectSubs.get(snapshot.projectId) ?? []) if (!s.all && !members?.has(s)) send(s)
        },
        () => {},
      )
    }
  }

  private deliverPresence(n: PresenceNotice): void {
    this.presence.record(n, Date.now())
    let frame: Buffer | undefined
    const projectId = n.projectId !== undefined ? n.projectId : this.feeds.get(n.taskId)?.projectId
    this.forEachCovering(n.taskId, projectId, (s) => {
      if (s.clientId === n.clientId) return
      s.sendFrame((frame ??= encode({ type: 'presence', taskId: n.taskId, userId: n.userId, clientId: n.clientId, state: n.state })))
    })
  }
}
