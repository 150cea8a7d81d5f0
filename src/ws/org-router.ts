/**
 * Everything one instance delivers for one organization: one bus subscription
 * (`org:<orgId>`, held while the org has sockets here), one TaskFeed per task
 * somebody here follows, the project and org-wide subscribers, and presences.
 * The bus handler only parses and hands over; feeds order, sockets queue.
 */
import { publishNotice, subscribeOrgNotices, type AttachmentNotice, type CommentNotice, type CommitNotice, type OrgNotice, type PresenceNotice } from '../bus/notices.js'
import type { Bus } from '../bus/types.js'
import type { TaskSnapshot } from '../domain/types.js'
import type { Comment, OpEvent, ServerMessage } from '../protocol/messages.js'
import { HOLD, TaskFeed, type FeedEntry, type FeedHost, type FeedMember, type FeedTiming } from './task-feed.js'
import { PresenceBoard } from './presence-board.js'
import type { GatewayLogger, SequencerPort } from './ports.js'
import { encode } from './wire.js'

/** What a router needs of a socket: who it is, what it follows, delivery, and the acks it owes. */
export interface Subscriber extends FeedMember {
  readonly clientId: string | null
  readonly userId: string
  tasks: Set<string> | null
  projects: Set<string> | null
  all: boolean
  /** Tasks it shared a presence on. */
  presence: Set<string> | null
  covers(taskId: string, projectId: string | null | undefined): boolean
  send(msg: ServerMessage): void
  sendFrame(frame: Buffer): void
  /** Sends the acks kept for the task's ops up to `upTo` (the feed will not deliver them now). */
  flushAcks(taskId: string, upTo?: number): void
  /** A comment change arrived: true when it was this socket's own, answered with its ack instead. */
  ackComment(notice: CommentNotice): boolean
}

/** What a router needs of the rest of the instance. */
export interface RouterDeps {
  instanceId: string
  bus: Bus
  log: GatewayLogger
  /** Reads of the op log and snapshots (gap repair, moved-in tasks). */
  reads: Pick<SequencerPort, 'opsSince' | 'snapshot'>
  /** A presence not refreshed for this long is cleared. */
  presenceTtlMs: number
  feedTiming: FeedTiming
  /** Test-only (TASKSYNC_FAULT=drop-publication): drop one publication from another instance, unrepaired. */
  dropPublication?: boolean
}

/** TASKSYNC_FAULT=drop-publication (test-only): this process has dropped its one publication. */
let publicationDropped = false

/** A feed entry that may carry the task's snapshot after a move (for sockets it moved into scope). */
interface RoutedEntry extends FeedEntry {
  prevProjectId?: string | null
  snapshot?: TaskSnapshot
}

export class OrgRouter implements FeedHost<Subscriber> {
  readonly feeds = new Map<string, TaskFeed<Subscriber>>()
  readonly presence = new PresenceBoard()
  private readonly projectSubs = new Map<string, Set<Subscriber>>()
  private readonly allSubs = new Set<Subscriber>()
  /** Sockets of this org on this instance; the router is dropped a while after it reaches 0. */
  sessions = 0
  idleSince = 0
  private busOff: Promise<(() => Promise<void>) | null> | null = null

  constructor(
    readonly orgId: string,
    private readonly deps: RouterDeps,
  ) {}

  attach(): void {
    this.sessions++
    // Other instances' notices; this one's reach route() from the local listeners.
    this.busOff ??= subscribeOrgNotices(this.deps.bus, this.orgId, this.deps.instanceId, this.onNotice).catch((err) => {
      // The feeds' probe repairs what this costs; the next attach tries again.
      this.deps.log.warn({ err, orgId: this.orgId }, 'bus subscribe failed')
      this.busOff = null
      return null
    })
  }

  /** The task's project as far as this instance's feed of it knows (undefined when nobody here follows it). */
  projectOf(taskId: string): string | null | undefined {
    return this.feeds.get(taskId)?.projectId
  }

  /** Where the socket is in the task's feed (HOLD while its subscribe is served); undefined when it does not follow the task. */
  positionOf(session: Subscriber, taskId: string): number | undefined {
    return this.feeds.get(taskId)?.members.get(session)
  }

  /** Removes a closed socket from everything here and clears its presences for others. */
  detach(session: Subscriber): void {
    this.sessions--
    if (this.sessions === 0) this.idleSince = Date.now()
    this.allSubs.delete(session)
    for (const p of session.projects ?? []) this.projectSubs.get(p)?.delete(session)
    this.pruneSession(session, session.all || session.projects?.size ? null : [...(session.tasks ?? [])], true)
    for (const taskId of session.presence ?? []) {
      const projectId = this.feeds.get(taskId)?.projectId
      void this.sharePresence({
        kind: 'presence',
        from: this.deps.instanceId,
        orgId: this.orgId,
        taskId,
        projectId,
        userId: session.userId,
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

  /** A notice from another instance (this one's own reach route() from the local listeners). */
  private readonly onNotice = (notice: OrgNotice): void => {
    if (notice.kind === 'op' && this.deps.dropPublication && !publicationDropped && notice.rev > 1 && this.feeds.get(notice.taskId)?.members.size) {
      // The deliberate bug: one publication lost for this instance's sockets, and never repaired.
      publicationDropped = true
      return this.ingestCommit(notice, true)
    }
    this.route(notice)
  }

  route(notice: OrgNotice): void {
    if (notice.kind === 'comment') this.deliverComment(notice)
    else if (notice.kind === 'attachment') this.deliverAttachment(notice)
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
    if (n.eventJson !== undefined) entry.json = n.eventJson
    if (n.prevProjectId !== undefined) entry.prevProjectId = n.prevProjectId
    if (n.snapshot) entry.snapshot = n.snapshot
    if (lost) entry.lost = lost
    feed.ingest(entry)
  }

  feedFor(taskId: string): TaskFeed<Subscriber> {
    let feed = this.feeds.get(taskId)
    if (!feed) this.feeds.set(taskId, (feed = new TaskFeed<Subscriber>(this.orgId, taskId, this, this.deps.feedTiming)))
    return feed
  }

  /** A socket stops following a task (failed or refused subscribe, unsubscribe). */
  leaveFeed(session: Subscriber, feed: TaskFeed<Subscriber>): void {
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
  pruneSession(session: Subscriber, taskIds: string[] | null, closing = false): void {
    const feeds = taskIds ? taskIds.map((id) => this.feeds.get(id)).filter((f) => f !== undefined) : [...this.feeds.values()]
    for (const feed of feeds) {
      if (!feed.members.has(session)) continue
      if (!closing && session.covers(feed.taskId, feed.projectId)) continue
      feed.remove(session)
      if (!closing) session.flushAcks(feed.taskId)
      this.dropIfIdle(feed)
    }
  }

  addProject(session: Subscriber, projectId: string): void {
    let set = this.projectSubs.get(projectId)
    if (!set) this.projectSubs.set(projectId, (set = new Set()))
    set.add(session)
    ;(session.projects ??= new Set()).add(projectId)
  }

  removeProject(session: Subscriber, projectId: string): void {
    const set = this.projectSubs.get(projectId)
    set?.delete(session)
    if (set?.size === 0) this.projectSubs.delete(projectId)
    session.projects?.delete(projectId)
  }

  addAll(session: Subscriber): void {
    this.allSubs.add(session)
    session.all = true
  }

  removeAll(session: Subscriber): void {
    this.allSubs.delete(session)
    session.all = false
  }

  /** Delivers a presence here and publishes it to the other instances. */
  async sharePresence(notice: PresenceNotice): Promise<void> {
    this.deliverPresence(notice)
    await publishNotice(this.deps.bus, notice)
  }

  /** Clears presences not refreshed within the TTL (each instance on its own). */
  expirePresence(now: number): void {
    if (this.presence.size === 0) return
    for (const notice of this.presence.expire(now, this.deps.presenceTtlMs)) this.deliverPresence(notice)
  }

  /** Feeds whose latest rev is worth probing: someone follows them from a known rev. */
  *probeTargets(): Iterable<TaskFeed<Subscriber>> {
    for (const feed of this.feeds.values()) if (feed.head >= 0 && feed.members.size > 0) yield feed
  }

  dropIfIdle(feed: TaskFeed<Subscriber>): void {
    if (!feed.idle || this.feeds.get(feed.taskId) !== feed) return
    feed.close()
    this.feeds.delete(feed.taskId)
  }

  // ── FeedHost ──

  opsSince(feed: TaskFeed<Subscriber>, fromRev: number, limit: number): Promise<OpEvent[]> {
    return this.deps.reads.opsSince(this.orgId, feed.taskId, fromRev, limit)
  }

  /** Sockets whose project or org subscription covers this op join the feed at it. */
  beforeDeliver(feed: TaskFeed<Subscriber>, entry: RoutedEntry, prev: string | null | undefined): void {
    if (this.allSubs.size === 0 && this.projectSubs.size === 0) return
    const rev = entry.event.rev
    const next = entry.projectId ?? null
    const before = entry.prevProjectId !== undefined ? entry.prevProjectId : prev
    const moved = rev > 1 && before !== undefined && before !== next
    const adopt = (s: Subscriber) => {
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
  afterDeliver(feed: TaskFeed<Subscriber>, entry: RoutedEntry, prev: string | null | undefined): void {
    const before = entry.prevProjectId !== undefined ? entry.prevProjectId : prev
    if (before === undefined || before === entry.projectId) return
    for (const s of feed.members.keys()) {
      if (s.covers(feed.taskId, entry.projectId)) continue
      feed.remove(s)
      s.flushAcks(feed.taskId)
    }
  }

  lost(feed: TaskFeed<Subscriber>, session: Subscriber): void {
    session.tasks?.delete(feed.taskId)
    session.flushAcks(feed.taskId)
    session.send({ type: 'sync_required', taskId: feed.taskId, reason: 'missed ops are no longer in the log; catch up over REST' })
  }

  repairFailed(feed: TaskFeed<Subscriber>, err: unknown): void {
    this.deps.log.warn({ err, taskId: feed.taskId }, 'gap repair failed; retrying')
  }

  // ── delivery of comments and presence ──

  private sendMovedIn(feed: TaskFeed<Subscriber>, s: Subscriber, entry: RoutedEntry): void {
    if (entry.snapshot) {
      feed.members.set(s, entry.event.rev)
      s.send({ type: 'snapshot', taskId: feed.taskId, rev: entry.event.rev, task: entry.snapshot })
      return
    }
    feed.members.set(s, HOLD)
    this.deps.reads.snapshot(this.orgId, feed.taskId).then(
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
  private forEachCovering(taskId: string, projectId: string | null | undefined, fn: (s: Subscriber) => void): void {
    const members = this.feeds.get(taskId)?.members
    if (members) for (const s of members.keys()) fn(s)
    for (const s of this.allSubs) if (!members?.has(s)) fn(s)
    if (projectId != null) for (const s of this.projectSubs.get(projectId) ?? []) if (!members?.has(s) && !s.all) fn(s)
  }

  /** Project subscribers are found by the notice's projectId; a notice without one (an older publisher) costs a read. */
  private deliverComment(n: CommentNotice): void {
    const known = n.projectId !== undefined ? n.projectId : this.feeds.get(n.taskId)?.projectId
    let frame: Buffer | undefined
    const send = (s: Subscriber) => {
      if (s.ackComment(n)) return
      s.sendFrame((frame ??= encode({ type: 'comment', taskId: n.taskId, comment: n.comment as Comment })))
    }
    this.forEachCovering(n.taskId, known, send)
    if (known === undefined && this.projectSubs.size > 0) {
      // The notice did not say which project the task is in: look it up for project subscribers.
      this.deps.reads.snapshot(this.orgId, n.taskId).then(
        (snapshot) => {
          const members = this.feeds.get(n.taskId)?.members
          if (snapshot?.projectId) for (const s of this.projectSubs.get(snapshot.projectId) ?? []) if (!s.all && !members?.has(s)) send(s)
        },
        () => {},
      )
    }
  }

  /** Like a comment change, to every socket covering the task; no ack: uploads are REST requests. */
  private deliverAttachment(n: AttachmentNotice): void {
    let frame: Buffer | undefined
    this.forEachCovering(n.taskId, n.projectId, (s) => s.sendFrame((frame ??= encode({ type: 'attachment', taskId: n.taskId, attachment: n.attachment }))))
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
