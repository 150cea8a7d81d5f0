/**
 * What travels on an organization's bus channel `org:<orgId>`: one JSON notice
 * per commit, comment change or presence, from any instance. Notices are written
 * by `encodeNotice` only, `kind` first and `from` second, so a subscriber skips
 * this instance's own echoes from the first bytes, without parsing them.
 */
import type { TaskSnapshot } from '../domain/types.js'
import type { Attachment, Comment, OpEvent } from '../protocol/messages.js'
import type { Bus } from './types.js'

/** A committed op (published by the sequencer). */
export interface CommitNotice {
  /** Distinguishes op commits from comment and presence notices on the same channel. */
  kind: 'op'
  /** Publishing instance. */
  from: string
  orgId: string
  taskId: string
  rev: number
  projectId: string | null
  /** Project before this commit, when the op moved the task. */
  prevProjectId?: string | null
  /** The snapshot after this commit, when the op moved the task (subscribers of the new project get it). */
  snapshot?: TaskSnapshot
  event: OpEvent
  /**
   * `event` as JSON, when the publisher has it (this instance's sequencer): the
   * frame for local sockets and the bus payload are both made from it, so an op is
   * serialized once. Never on the wire itself (encodeNotice writes it as `event`).
   */
  eventJson?: string
}

/** A comment created, edited or deleted (published by the comment service). */
export interface CommentNotice {
  kind: 'comment'
  /** Publishing instance. */
  from: string
  orgId: string
  taskId: string
  /**
   * The task's project as read when the change was checked (null: in no project),
   * so project subscribers are reached without a read. Absent from older publishers.
   */
  projectId?: string | null
  /** The comment after the change (a deleted one is its tombstone: `deleted: true`, empty body). */
  comment: Comment
  action: 'create' | 'edit' | 'delete'
  /** Who made the change (the submitting socket gets its ack in place of the echo). */
  clientId: string | null
  seq: number | null
}

/** A presence shared on a task, or its clearing (`state: null`); never stored. */
export interface PresenceNotice {
  kind: 'presence'
  from: string
  orgId: string
  taskId: string
  /** The task's project when the sender knew it (lets project subscribers receive it). */
  projectId: string | null | undefined
  userId: string
  clientId: string
  state: Record<string, unknown> | null
}

/** An attachment completed or deleted (published by the attachment service). */
export interface AttachmentNotice {
  kind: 'attachment'
  from: string
  orgId: string
  taskId: string
  /** The task's project when the change was checked (null: in no project). */
  projectId: string | null
  /** The attachment after the change (a deleted one: `deleted: true`). */
  attachment: Attachment
}

/** Every payload on an `org:<orgId>` bus channel. */
export type OrgNotice = CommitNotice | CommentNotice | PresenceNotice | AttachmentNotice

/** The bus channel of an organization (the bus adds its own prefix). */
export const orgChannel = (orgId: string): string => `org:${orgId}`

/** The one way a notice is written for the bus: `kind` first, `from` second, then the rest. */
export function encodeNotice(notice: OrgNotice): string {
  if (notice.kind === 'op') return encodeCommitNotice(notice)
  const { kind, from, ...rest } = notice
  return JSON.stringify({ kind, from, ...rest })
}

/** A commit notice, one per op: written field by field (no copy of the notice), its event from `eventJson` when it has it. */
function encodeCommitNotice(n: CommitNotice): string {
  let out = `{"kind":"op","from":${JSON.stringify(n.from)},"orgId":${JSON.stringify(n.orgId)},"taskId":${JSON.stringify(n.taskId)},"rev":${JSON.stringify(n.rev)}`
  if (n.projectId !== undefined) out += `,"projectId":${JSON.stringify(n.projectId)}`
  if (n.prevProjectId !== undefined) out += `,"prevProjectId":${JSON.stringify(n.prevProjectId)}`
  if (n.snapshot !== undefined) out += `,"snapshot":${JSON.stringify(n.snapshot)}`
  return `${out},"event":${n.eventJson ?? JSON.stringify(n.event)}}`
}

const KIND_KEY = '{"kind":"'
const FROM_KEY = '","from":'

/** Publishes a notice on its organization's channel. */
export function publishNotice(bus: Bus, notice: OrgNotice): Promise<void> {
  return bus.publish(orgChannel(notice.orgId), encodeNotice(notice))
}

/**
 * Subscribes to the notices of an organization published by other instances.
 * This instance's own were delivered by its local listeners already, so their
 * echo is skipped before it is parsed (one JSON.parse per op saved): the prefix
 * `{"kind":"…","from":"<instanceId>",` is structural (encodeNotice), never inside
 * a value. A payload that is not JSON is dropped.
 */
export function subscribeOrgNotices(bus: Bus, orgId: string, instanceId: string, handler: (notice: OrgNotice) => void): Promise<() => Promise<void>> {
  const own = `${FROM_KEY}${JSON.stringify(instanceId)},`
  return bus.subscribe(
    orgChannel(orgId),
    (payload) => {
      const from = payload.indexOf(FROM_KEY)
      if (from > 0 && from < 24 && payload.startsWith(KIND_KEY) && payload.startsWith(own, from)) return
      let notice: OrgNotice
      try {
        notice = JSON.parse(payload)
      } catch {
        return
      }
      // A publisher that wrote its keys in another order.
      if (notice.from === instanceId) return
      handler(notice)
    },
    // The Redis bus then drops this instance's echoes from the message's first bytes, undecoded.
    { skipOwnNotices: instanceId === bus.instanceId },
  )
}
