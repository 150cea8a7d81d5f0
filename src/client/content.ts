/**
 * Pure helpers of the client state machine: splitting a snapshot into content
 * and metadata, keeping the metadata current as ops commit, and undoing a
 * rejected op under later local ones.
 */
import { invertText, taskType, textDiff } from '../domain/index.js'
import type { TaskContent, TaskOp, TaskSnapshot, TextOp } from '../domain/types.js'
import type { OpEvent } from '../protocol/messages.js'
import { contentOf } from '../domain/snapshot.js'

export { contentOf }

/** Who committed a rev and when, as far as the client knows it. */
export interface CommitInfo {
  rev: number
  deviceId?: string
  userId?: string
  at?: string
}

/** The snapshot at rev 1 from the task's creation op (the op on create() the server logs as rev 1). */
export function creationSnapshot(ev: OpEvent): TaskSnapshot {
  const empty: TaskSnapshot = { ...taskType.create(), id: ev.taskId, rev: 0, clock: {}, createdAt: ev.at, updatedAt: ev.at, updatedBy: ev.userId }
  return commitOnto(empty, ev.op as TaskOp, { rev: 1, deviceId: ev.deviceId, userId: ev.userId, at: ev.at })
}

/** `base` after `op` committed as `info.rev`: content applied, metadata advanced. */
export function commitOnto(base: TaskSnapshot, op: TaskOp, info: CommitInfo): TaskSnapshot {
  // (apply reads only the content fields of the snapshot, and gives a new object of them.)
  return withCommit(base, taskType.apply(base, op), info)
}

/** `base` with content `c` (what its op at `info.rev` made of it) and its metadata advanced. */
export function withCommit(base: TaskSnapshot, c: TaskContent, info: CommitInfo): TaskSnapshot {
  let clock = base.clock
  if (info.deviceId) {
    clock = { ...clock }
    clock[info.deviceId] = (clock[info.deviceId] ?? 0) + 1
  }
  return {
    title: c.title,
    description: c.description,
    status: c.status,
    priority: c.priority,
    tags: c.tags,
    assigneeId: c.assigneeId,
    dueAt: c.dueAt,
    projectId: c.projectId,
    customFields: c.customFields,
    deleted: c.deleted,
    id: base.id,
    rev: info.rev,
    clock,
    createdAt: base.createdAt,
    updatedAt: info.at ?? new Date().toISOString(),
    updatedBy: info.userId ?? base.updatedBy,
  }
}

/**
 * `op` applied to `s` in two steps: this call checks it and may throw, changing
 * nothing; the function it answers cannot throw and gives the result. `op` must
 * be valid as the op type made it (`normalize`, or `transform` of such an op).
 *
 * Custom fields: every op of a busy task sets one (the load generator stamps its
 * own, 50 writers make 50 keys), and a copy of every key per received op, twice
 * (confirmed copy and view), was the receive path's largest cost. An object in
 * `owned` is one only this task holds and never handed out: an op that sets keys
 * it already has (or unsets keys) writes into it in place. An op adding a key, or
 * content whose object is not owned, gets a copy as usual, which becomes owned.
 */
export function prepareApply(s: TaskContent, op: TaskOp, owned: WeakSet<object>): () => TaskContent {
  const edits = op.customFields
  if (edits && !s.deleted && !op.delete && owned.has(s.customFields)) {
    const fields = s.customFields
    let fits = true
    for (const key in edits) if ('set' in edits[key] && !Object.hasOwn(fields, key)) fits = false
    if (fits) {
      const { customFields: _, ...rest } = op
      // (Checks the other fields; the result shares `fields`, which gets the edits below.)
      const r = taskType.applyNormalized(s, rest)
      return () => {
        for (const key in edits) {
          const e = edits[key]
          if ('set' in e) fields[key] = e.set
          else delete fields[key]
        }
        return r
      }
    }
  }
  const r = taskType.apply(s, op)
  if (edits && r.customFields !== s.customFields) owned.add(r.customFields)
  return () => r
}

/** The snapshot a task has before its creation commits (rev 0). */
export function unborn(id: string, content: TaskContent, userId: string | undefined): TaskSnapshot {
  const now = new Date().toISOString()
  return { ...content, id, rev: 0, clock: {}, createdAt: now, updatedAt: now, updatedBy: userId ?? '' }
}

/**
 * `pending` (built on `base`+`rejected`) rewritten to apply on `base` alone:
 * text edits are transformed past the undo of the rejected text edits;
 * set-like fields keep their values (they are absolute). Throws if it cannot apply.
 */
export function withoutRejected(base: TaskContent, rejected: TaskOp, pending: TaskOp): TaskOp {
  const out: TaskOp = { ...pending }
  for (const field of ['title', 'description'] as const) {
    const r = rejected[field]
    const p = pending[field]
    if (!r || !p) continue
    const undo = invertText(base[field], r)
    const t = taskType.transform({ [field]: p }, { [field]: undo }, 'left')[field]
    if (t) out[field] = t
    else delete out[field]
  }
  const normalized = taskType.normalize(out)
  taskType.apply(base, normalized)
  return normalized
}

/** Most edit steps the fine diff looks for before it settles for one replaced span. */
const MAX_DIFF_STEPS = 2000

/**
 * The edit turning `before` into `after` as a text op (code points), keeping
 * every common stretch (Myers' diff), so that an edit made elsewhere in the text
 * keeps its place when transformed past it. Texts that differ by more than
 * MAX_DIFF_STEPS code points get one replaced span (prefix and suffix kept).
 */
export function textChange(before: string, after: string): TextOp {
  if (before === after) return []
  const a = Array.from(before)
  const b = Array.from(after)
  let pre = 0
  while (pre < a.length && pre < b.length && a[pre] === b[pre]) pre++
  let suf = 0
  while (suf < a.length - pre && suf < b.length - pre && a[a.length - 1 - suf] === b[b.length - 1 - suf]) suf++
  const A = a.slice(pre, a.length - suf)
  const B = b.slice(pre, b.length - suf)
  const steps = myers(A, B)
  if (!steps) return textDiff(before, after)
  const op: TextOp = []
  const push = (c: number | string | { d: number }) => {
    const last = op[op.length - 1]
    if (typeof c === 'number' && typeof last === 'number') op[op.length - 1] = last + c
    else if (typeof c === 'string' && typeof last === 'string') op[op.length - 1] = last + c
    else if (typeof c === 'object' && typeof last === 'object') op[op.length - 1] = { d: last.d + c.d }
    else op.push(c)
  }
  if (pre > 0) push(pre)
  for (const s of steps) push(s === 'keep' ? 1 : s === 'del' ? { d: 1 } : s.ins)
  while (typeof op[op.length - 1] === 'number') op.pop()
  return op
}

type Step = 'keep' | 'del' | { ins: string }

/** The shortest edit script from A to B (code point arrays), or null past MAX_DIFF_STEPS. */
function myers(A: string[], B: string[]): Step[] | null {
  const N = A.length
  const M = B.length
  const max = Math.min(N + M, MAX_DIFF_STEPS)
  const off = max + 1
  const v = new Int32Array(2 * max + 3)
  const trace: Int32Array[] = []
  for (let d = 0; d <= max; d++) {
    trace.push(v.slice())
    for (let k = -d; k <= d; k += 2) {
      let x = k === -d || (k !== d && v[k - 1 + off] < v[k + 1 + off]) ? v[k + 1 + off] : v[k - 1 + off] + 1
      let y = x - k
      while (x < N && y < M && A[x] === B[y]) {
        x++
        y++
      }
      v[k + off] = x
      if (x >= N && y >= M) return backtrack(A, B, trace, d, off)
    }
  }
  return null
}

function backtrack(A: string[], B: string[], trace: Int32Array[], D: number, off: number): Step[] {
  const out: Step[] = []
  let x = A.length
  let y = B.length
  for (let d = D; d > 0; d--) {
    const v = trace[d]
    const k = x - y
    const prevK = k === -d || (k !== d && v[k - 1 + off] < v[k + 1 + off]) ? k + 1 : k - 1
    const prevX = v[prevK + off]
    const prevY = prevX - prevK
    while (x > prevX && y > prevY) {
      out.push('keep')
      x--
      y--
    }
    if (x === prevX) out.push({ ins: B[--y] })
    else {
      out.push('del')
      x--
    }
  }
  while (x > 0 && y > 0) {
    out.push('keep')
    x--
    y--
  }
  return out.reverse()
}

/**
 * `local` (built on `from`) rewritten to apply on `to`, a state the server went
 * back to (restored from a backup): text edits are transformed past the edit
 * turning `from` into `to`, as if it had been made concurrently; set-like fields
 * keep their values (they are absolute). Throws if it cannot apply.
 */
export function rebaseOnto(from: TaskContent, to: TaskContent, local: TaskOp): TaskOp {
  const out: TaskOp = { ...local }
  for (const field of ['title', 'description'] as const) {
    const p = local[field]
    if (!p) continue
    const t = taskType.transform({ [field]: p }, { [field]: textChange(from[field], to[field]) }, 'left')[field]
    if (t) out[field] = t
    else delete out[field]
  }
  const normalized = taskType.normalize(out)
  taskType.apply(to, normalized)
  return normalized
}
