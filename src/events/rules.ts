/**
 * Who is told what, from one event: pure, so it is property-tested. The people
 * and tasks an event names are looked up by the caller and handed in.
 */
import type { NewNotification, StoredEvent } from './types.js'

export interface Person {
  id: string
  email: string
  displayName: string
}

export interface TaskFacts {
  title: string
  assigneeId: string | null
  createdBy: string
}

export interface RuleContext {
  /** The active people of the event's organization. */
  people: readonly Person[]
  /** The event's task as it is now (null when unknown). */
  task: TaskFacts | null
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

/**
 * The people a comment body mentions: `@` then their email or display name, not
 * followed by a letter, digit or more of a name (so `@Ann` does not mention `Anna`).
 * Case-insensitive.
 */
export function mentionedIn(body: string, people: readonly Person[]): Person[] {
  return people.filter((p) =>
    [p.email, p.displayName].some((name) => name.length > 0 && new RegExp(`@${escape(name)}(?![\\p{L}\\p{N}_@.-]*[\\p{L}\\p{N}_])`, 'iu').test(body)),
  )
}

const quote = (title: string | undefined) => `“${(title ?? 'a task').slice(0, 120)}”`

/**
 * False when `notificationsFor` makes nothing of the event whatever the people
 * and the task (an update that assigns nobody, a deletion…): fan-out then
 * looks nothing up for it.
 */
export function mayNotify(e: StoredEvent): boolean {
  switch (e.type) {
    case 'task.created':
    case 'task.updated':
      // Most ops do not assign: the change's text tells without parsing it.
      if (e.changeJson !== undefined && !e.changeJson.includes('"assigneeId"')) return false
      return typeof ((e.change.fields ?? {}) as Record<string, { to?: unknown }>).assigneeId?.to === 'string'
    case 'comment.created':
    case 'task.due_soon':
    case 'task.overdue':
      return true
    default:
      return false
  }
}

/** The notifications one event makes; never one for the person who acted. */
export function notificationsFor(e: StoredEvent, ctx: RuleContext): NewNotification[] {
  const out: NewNotification[] = []
  const nameOf = (id: string | null) => ctx.people.find((p) => p.id === id)?.displayName ?? 'Someone'
  const add = (userId: string | null | undefined, kind: NewNotification['kind'], title: string) => {
    if (!userId || userId === e.actorId || out.some((n) => n.userId === userId)) return
    if (!ctx.people.some((p) => p.id === userId)) return
    out.push({ orgId: e.orgId, userId, kind, eventId: e.id, taskId: e.taskId, title })
  }
  const fields = (e.change.fields ?? {}) as Record<string, { from?: unknown; to?: unknown }>
  const title = quote((fields.title?.to as string | undefined) ?? ctx.task?.title)
  switch (e.type) {
    case 'task.created':
    case 'task.updated': {
      const to = fields.assigneeId?.to
      if (typeof to === 'string') add(to, 'assigned', `${nameOf(e.actorId)} assigned you ${title}`)
      break
    }
    case 'comment.created': {
      const comment = e.change.comment as { body?: string } | undefined
      for (const p of mentionedIn(comment?.body ?? '', ctx.people)) add(p.id, 'mentioned', `${nameOf(e.actorId)} mentioned you on ${title}`)
      add(ctx.task?.assigneeId, 'commented', `${nameOf(e.actorId)} commented on ${title}`)
      add(ctx.task?.createdBy, 'commented', `${nameOf(e.actorId)} commented on ${title}`)
      break
    }
    case 'task.due_soon':
      add(ctx.task?.assigneeId ?? ctx.task?.createdBy, 'due_soon', `${title} is due within 24 hours`)
      break
    case 'task.overdue':
      add(ctx.task?.assigneeId ?? ctx.task?.createdBy, 'overdue', `${title} is overdue`)
      break
    default:
      break
  }
  return out
}
