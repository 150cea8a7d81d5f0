/**
 * Seeded random task mutations for the chaos clients: small edits of every kind
 * the op type has (text with multi-unit code points, status, priority, tags,
 * assignee, due date, custom fields), valid against the client's current view
 * and kept small, so tasks stay cheap to hash and limits are never reached.
 */
import type { TaskContent, TaskOp, TextOp } from '../src/domain/types.js'
import type { TaskInit } from '../src/protocol/messages.js'
import type { Rng } from './rng.js'

const WORDS = ['ship', 'fix', 'déjà', 'vu', '😀', 'naïve', 'α', '→', 'plan', '𝒳']
const STATUSES = ['todo', 'in_progress', 'in_review', 'done', 'cancelled'] as const
const TAGS = ['api', 'web', 'ios', 'bug', 'p1']
const ASSIGNEES = ['0b3f8a8e-4a39-4a66-9a3a-3f1e1b7c0a01', '0b3f8a8e-4a39-4a66-9a3a-3f1e1b7c0a02', null]
const FIELDS = ['estimate', 'team', 'risk']
const TITLE_MAX = 40
const DESCRIPTION_MAX = 80

/** A text edit of `text` (counted in code points): an insert while short, else a delete. */
function textEdit(rng: Rng, text: string, max: number): TextOp {
  const len = [...text].length
  if (len < max && (len === 0 || rng.chance(0.65))) {
    const at = rng.int(0, len)
    const word = rng.pick(WORDS) + ' '
    return at > 0 ? [at, word] : [word]
  }
  const at = rng.int(0, len - 1)
  const n = rng.int(1, Math.min(4, len - at))
  return at > 0 ? [at, { d: n }] : [{ d: n }]
}

function onePart(rng: Rng, c: TaskContent): TaskOp {
  switch (rng.weighted({ title: 4, description: 3, status: 2, priority: 1, tags: 2, assignee: 1, due: 1, custom: 2 })) {
    case 'title':
      return { title: textEdit(rng, c.title, TITLE_MAX) }
    case 'description':
      return { description: textEdit(rng, c.description, DESCRIPTION_MAX) }
    case 'status':
      return { status: { set: rng.pick(STATUSES) } }
    case 'priority':
      return { priority: { set: rng.int(0, 4) } }
    case 'tags': {
      const tag = rng.pick(TAGS)
      return c.tags.includes(tag) ? { tags: { remove: [tag] } } : { tags: { add: [tag] } }
    }
    case 'assignee':
      return { assigneeId: { set: rng.pick(ASSIGNEES) } }
    case 'due':
      return { dueAt: { set: rng.chance(0.2) ? null : new Date(Date.UTC(2027, rng.int(0, 11), rng.int(1, 28), rng.int(0, 23))).toISOString() } }
    default: {
      const key = rng.pick(FIELDS)
      return { customFields: { [key]: key in c.customFields && rng.chance(0.3) ? { unset: true } : { set: rng.int(0, 99) } } }
    }
  }
}

/** One or two edits of `c`, merged into one op (different keys never collide: the second is skipped if it would). */
export function randomOp(rng: Rng, c: TaskContent): TaskOp {
  const op = onePart(rng, c)
  if (rng.chance(0.25)) {
    const more = onePart(rng, c)
    for (const [k, v] of Object.entries(more)) if (!(k in op)) (op as Record<string, unknown>)[k] = v
  }
  return op
}

/** The initial fields of a task a client creates. */
export function randomInit(rng: Rng): TaskInit {
  return { title: `${rng.pick(WORDS)} ${rng.int(1, 999)}`, status: rng.pick(STATUSES), priority: rng.int(0, 4), tags: rng.chance(0.5) ? [rng.pick(TAGS)] : [] }
}
