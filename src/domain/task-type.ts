/**
 * The task op type in the ottypes shape that ShareDB and ot-fuzzer use: the
 * same code the server and the client SDK run.
 */
import { applyOp, createContent } from './apply.js'
import { composeOps } from './compose.js'
import { contentFromInit } from './init.js'
import { readOp } from './op.js'
import { transformOp } from './transform.js'
import { DEFAULT_LIMITS, type TaskContent, type TaskInit, type TaskLimits, type TaskOp } from './types.js'

export interface TaskType {
  readonly name: 'tasksync-task'
  readonly uri: 'https://tasksync.dev/types/task/v1'
  /** The content of a new task; with `init`, that content validated (as ShareDB's create passes it). */
  create(init?: TaskInit): TaskContent
  /** `op` applied to `snapshot`, as a new object. Throws InvalidOpError when it cannot apply. */
  apply(snapshot: TaskContent, op: TaskOp): TaskContent
  /** Like apply, for an op exactly as `normalize` of this type returned it: it is not read (validated) a second time. */
  applyNormalized(snapshot: TaskContent, op: TaskOp): TaskContent
  /** `op` rewritten to apply after the concurrent `other`; see transform.ts for the meaning of `side`. */
  transform(op: TaskOp, other: TaskOp, side: 'left' | 'right'): TaskOp
  /** One op with the effect of `a` then `b`. */
  compose(a: TaskOp, b: TaskOp): TaskOp
  /** The canonical form of `op`; an op that does nothing becomes `{}`. Throws InvalidOpError. */
  normalize(op: TaskOp): TaskOp
  /** The limits this type enforces. */
  readonly limits: Readonly<TaskLimits>
}

/** How far an op the type made is known good: canonical (read with loose limits), or valid under the type's limits too. */
const CANONICAL = 1
const VALID = 2

/** The task type enforcing `limits` (the server builds it from its configuration). */
export function makeTaskType(limits: TaskLimits): TaskType {
  const frozen = Object.freeze({ ...limits })
  // transform and compose are not the validation gate (checkOp and apply are):
  // they read ops with per-value limits lifted, so ops committed before a limit
  // was lowered still rebase. Depth stays bounded to keep recursion safe.
  const loose: TaskLimits = {
    ...frozen,
    tagLengthMax: Infinity,
    customFieldsMax: Infinity,
    customFieldValueBytesMax: Infinity,
    customFieldDepthMax: Math.max(frozen.customFieldDepthMax, 64),
  }
  // Ops this type made in canonical form (normalize, transform, compose) carry a
  // mark of this type, so that passing them back (a server transforming an op past
  // 50 committed ones, a client rebasing its in-flight op on every op it receives)
  // does not read and validate them again: reading was most of a transform's cost.
  // VALID: read with this type's limits (apply needs no second read); CANONICAL:
  // read with the loose ones (transform and compose need no second read). The mark
  // is a non-enumerable symbol property: JSON, Object.keys, spread copies and deep
  // equality do not see it (a copy, which may be changed, is read again). Ops are
  // never changed once made, so a marked op stays what it was when read.
  const mark = Symbol('tasksync-task op read')
  type Marked = TaskOp & { [mark]?: typeof CANONICAL | typeof VALID }
  const remember = (op: TaskOp, level: typeof CANONICAL | typeof VALID): TaskOp => Object.defineProperty(op, mark, { value: level })
  const readValid = (op: Marked): TaskOp => (op?.[mark] === VALID ? op : remember(readOp(op, frozen), VALID))
  const readLoose = (op: Marked): TaskOp => (op?.[mark] !== undefined ? op : remember(readOp(op, loose), CANONICAL))
  return Object.freeze({
    name: 'tasksync-task' as const,
    uri: 'https://tasksync.dev/types/task/v1' as const,
    limits: frozen,
    create: (init?: TaskInit) => (init === undefined ? createContent() : contentFromInit(init, frozen)),
    apply: (snapshot: TaskContent, op: TaskOp) => applyOp(snapshot, readValid(op), frozen),
    applyNormalized: (snapshot: TaskContent, op: TaskOp) => applyOp(snapshot, op, frozen),
    transform(op: Marked, other: TaskOp, side: 'left' | 'right') {
      if (side !== 'left' && side !== 'right') throw new TypeError(`side must be 'left' or 'right', got ${String(side)}`)
      // The result keeps values of `op` only (other only moves or drops them): valid when `op` was.
      // (Any input may come here, null included: it is read, and refused, like any other.)
      const level = op?.[mark]
      return remember(transformOp(level !== undefined ? op : readLoose(op), readLoose(other), side), level ?? CANONICAL)
    },
    compose: (a: TaskOp, b: TaskOp) => remember(composeOps(readLoose(a), readLoose(b)), CANONICAL),
    // A fresh copy every time, marked as read (like every op, not to be changed afterwards).
    normalize: (op: TaskOp) => remember(readOp(op, frozen), VALID),
  })
}

/** The task type with the default limits of PROTOCOL.md section 1. */
export const taskType: TaskType = makeTaskType(DEFAULT_LIMITS)
