/**
 * Per-user undo and redo of one task: only this client's own edits are undone,
 * each moved past everything applied since (other people's edits stay).
 *
 * The history watches the task's view change by change. A local edit pushes
 * its inverse (edits within `pauseMs` of the previous one join its step); any
 * other change (a remote op, or a reload seen as the difference between the old
 * and the new view) moves every entry past it with `transformUndo`. As in
 * ShareDB's undo manager, the top entry applies to the current view and each
 * entry below applies to the view with the entries above it undone.
 */
import { invertOp, opFromPatch, taskType, transformUndo } from '../domain/index.js'
import type { JsonValue, TaskContent, TaskOp, TaskPatch } from '../domain/types.js'

/** Undo options of a client (TaskSyncClientOptions.undo). */
export interface UndoOptions {
  /** Edits closer together than this form one undo step (default 500 ms). */
  pauseMs?: number
  /** Steps kept per task (default 200): the oldest are forgotten. */
  limit?: number
}

const isEmpty = (op: TaskOp) => Object.keys(op).length === 0

export class UndoHistory {
  private readonly undoStack: TaskOp[] = []
  private readonly redoStack: TaskOp[] = []
  private seen: TaskContent | null = null
  private lastEditAt = -Infinity
  private source: 'undo' | 'redo' | null = null
  private readonly pauseMs: number
  private readonly limit: number

  constructor(opts: UndoOptions = {}, private readonly now: () => number = Date.now) {
    this.pauseMs = opts.pauseMs ?? 500
    this.limit = opts.limit ?? 200
  }

  get canUndo(): boolean {
    return this.undoStack.length > 0
  }

  get canRedo(): boolean {
    return this.redoStack.length > 0
  }

  /** The view the history starts from (a load, a restore, a local create). */
  start(view: TaskContent | null): void {
    this.seen = view
  }

  /** The view changed to `view`: by a local op, another op (`op` as applied to the view), or whole (`op` null). */
  observe(local: boolean, op: TaskOp | null, view: TaskContent | null): void {
    const before = this.seen
    this.seen = view
    if (!before || !view || view.deleted) return this.clear()
    if (op === null) {
      const diff = contentDiff(before, view)
      if (diff === null) this.clear()
      else if (!isEmpty(diff)) this.later(diff)
    } else if (local) this.own(op, before)
    else this.later(op)
  }

  /** Takes the next step to undo (`'undo'`) or redo; `apply` submits it, and its inverse lands on the other stack. */
  step(kind: 'undo' | 'redo', apply: (op: TaskOp) => void): boolean {
    const stack = kind === 'undo' ? this.undoStack : this.redoStack
    const op = stack.pop()
    if (!op) return false
    this.source = kind
    try {
      apply(op)
    } finally {
      this.source = null
      this.lastEditAt = -Infinity // the next edit starts a step of its own
    }
    return true
  }

  clear(): void {
    this.undoStack.length = 0
    this.redoStack.length = 0
  }

  private own(op: TaskOp, before: TaskContent): void {
    if (op.delete) return this.clear()
    const inv = invertOp(op, before)
    if (isEmpty(inv)) return
    if (this.source === 'undo') return this.push(this.redoStack, inv)
    if (this.source === 'redo') return this.push(this.undoStack, inv)
    this.redoStack.length = 0
    const at = this.now()
    const top = this.undoStack.length - 1
    if (top >= 0 && at - this.lastEditAt < this.pauseMs) this.undoStack[top] = taskType.compose(inv, this.undoStack[top])
    else this.push(this.undoStack, inv)
    this.lastEditAt = at
  }

  private push(stack: TaskOp[], op: TaskOp): void {
    stack.push(op)
    if (stack.length > this.limit) stack.shift()
  }

  /** Someone else's op (or a reload) reached the view: every entry moves past it. */
  private later(op: TaskOp): void {
    moveStack(this.undoStack, op)
    moveStack(this.redoStack, op)
  }
}

function moveStack(stack: TaskOp[], op: TaskOp): void {
  let later = op
  for (let i = stack.length - 1; i >= 0; i--) {
    // (The bottom entry's `later` is not used: not computed.)
    const moved = transformUndo(stack[i], later, i > 0)
    stack[i] = moved.undo
    later = moved.later
  }
  for (let i = stack.length - 1; i >= 0; i--) if (isEmpty(stack[i])) stack.splice(i, 1)
}

/** The op taking `before` to `after` (null when it cannot be expressed: the history is then cleared). */
function contentDiff(before: TaskContent, after: TaskContent): TaskOp | null {
  const customFields: Record<string, JsonValue> = { ...after.customFields }
  for (const key of Object.keys(before.customFields)) if (!Object.hasOwn(after.customFields, key)) customFields[key] = null
  const { deleted: _deleted, ...fields } = after
  try {
    return opFromPatch(before, { ...fields, customFields } as TaskPatch, { ...taskType.limits, titleMax: Infinity, descriptionMax: Infinity, tagsMax: Infinity, customFieldsMax: Infinity })
  } catch {
    return null
  }
}
