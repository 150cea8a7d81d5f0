/**
 * The vocabulary of events going out: webhook event types, notification kinds and
 * mail preferences. Every event is written to the outbox (the `events` table) in
 * the transaction of the change it tells of.
 */

/** Event types, one line each on when they are emitted. */
export const EVENT_TYPES = [
  /** A task was created (rev 1); `change.fields` holds the fields that differ from a blank task. */
  'task.created',
  /** An op was committed; `change.fields` is {field: {from, to}} of what changed. */
  'task.updated',
  /** An op deleted the task. */
  'task.deleted',
  /** The overdue job found the task past its dueAt and not done or cancelled (once per due date). */
  'task.overdue',
  /** The due-soon job found the task due within 24 h (once per due date). */
  'task.due_soon',
  'comment.created',
  'comment.edited',
  'comment.deleted',
  /** A commit recorded a conflict for a person to settle. */
  'conflict.created',
  /** A conflict was settled (its resolution op committed). */
  'conflict.resolved',
  /** A user joined the organization. */
  'member.added',
  /** A user's display name or role changed. */
  'member.updated',
  /** A user was removed (deactivated). */
  'member.removed',
  /** Sent only by POST /api/webhooks/:id/test, to that endpoint. */
  'webhook.test',
] as const

export type EventType = (typeof EVENT_TYPES)[number]

/** One event as stored in the outbox. */
export interface StoredEvent {
  seq: number
  /** The webhook-id: a redelivery carries the same one. */
  id: string
  orgId: string
  type: EventType
  taskId: string | null
  rev: number | null
  actorId: string | null
  /** RFC 3339. */
  at: string
  change: Record<string, unknown>
  /** The change as JSON text, when read from the outbox (the payload embeds it without re-serializing). */
  readonly changeJson?: string
}

/** The `data` of a webhook payload: the event, named for receivers. */
export function eventData(e: StoredEvent) {
  return { id: e.id, type: e.type, organizationId: e.orgId, taskId: e.taskId, rev: e.rev, actorId: e.actorId, at: e.at, change: e.change }
}

/** The body of a delivery (Standard Webhooks: `{type, timestamp, data}`). */
export function webhookPayload(e: StoredEvent): string {
  if (e.changeJson === undefined) return JSON.stringify({ type: e.type, timestamp: e.at, data: eventData(e) })
  // The same document, keys in the same order, with the change's JSON text spliced in as read.
  const type = JSON.stringify(e.type)
  const at = JSON.stringify(e.at)
  const str = (s: string | null) => (s === null ? 'null' : JSON.stringify(s))
  return `{"type":${type},"timestamp":${at},"data":{"id":${str(e.id)},"type":${type},"organizationId":${str(e.orgId)},"taskId":${str(e.taskId)},"rev":${e.rev === null ? 'null' : String(e.rev)},"actorId":${str(e.actorId)},"at":${at},"change":${e.changeJson}}}`
}

export const NOTIFICATION_KINDS = ['assigned', 'mentioned', 'commented', 'due_soon', 'overdue'] as const
export type NotificationKind = (typeof NOTIFICATION_KINDS)[number]

/** How a kind is mailed: at once, in the daily digest at 08:00 local time, or not at all. */
export const MAIL_PREFS = ['immediately', 'digest', 'off'] as const
export type MailPref = (typeof MAIL_PREFS)[number]

/** A notification to write, derived from an event. */
export interface NewNotification {
  orgId: string
  userId: string
  kind: NotificationKind
  eventId: string
  taskId: string | null
  title: string
}

export interface NotificationDto {
  id: string
  kind: NotificationKind
  taskId: string | null
  eventId: string
  title: string
  createdAt: string
  readAt: string | null
}
