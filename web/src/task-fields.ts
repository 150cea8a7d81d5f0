/** Names and helpers for task fields, shared by the pages. */
import type { TaskSnapshot } from 'tasksync/client'

export const STATUSES = ['todo', 'in_progress', 'in_review', 'done', 'cancelled'] as const
export type Status = (typeof STATUSES)[number]
export const STATUS_LABEL: Record<Status, string> = { todo: 'To do', in_progress: 'In progress', in_review: 'In review', done: 'Done', cancelled: 'Cancelled' }
export const PRIORITIES = ['None', 'Low', 'Medium', 'High', 'Urgent'] as const

/** Due and not finished. */
export function isOverdue(t: Pick<TaskSnapshot, 'dueAt' | 'status'>, now = Date.now()): boolean {
  return !!t.dueAt && Date.parse(t.dueAt) < now && t.status !== 'done' && t.status !== 'cancelled'
}

// One formatter each: building an Intl formatter per call cost seconds on a board of 1,000 cards.
const short = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', timeZone: 'UTC' })
const long = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' })
export const shortDate = (iso: string) => short.format(new Date(iso))
export const dateTime = (iso: string) => long.format(new Date(iso))
