/**
 * The verdicts of a chaos run: the recorded history held against what the
 * database kept (each task's op log and snapshot, read after the run). Pure:
 * no I/O, so every property is tested on small hand-made histories too.
 */
import { taskType } from '../src/domain/index.js'
import type { TaskSnapshot } from '../src/domain/types.js'
import type { OpEvent } from '../src/protocol/messages.js'
import { canonical } from '../load/canonical.js'
import type { HistoryEvent } from './history.js'
import { hashOf } from './world.js'

/** What the database holds of one task after the run. */
export interface ServerTask {
  taskId: string
  snapshot: TaskSnapshot | null
  /** The whole op log, rev order. */
  ops: OpEvent[]
}

export interface Violation {
  message: string
  /** The smallest part of the history (and of the log) that shows it. */
  excerpt: unknown[]
}

export interface Verdict {
  property: string
  description: string
  ok: boolean
  checked: number
  violations: Violation[]
}

type Ev<T extends HistoryEvent['type']> = Extract<HistoryEvent, { type: T }>

export const PROPERTIES = {
  'total-order': 'per task, the op log holds revs 1..n with no gap and no duplicate, and the snapshot is at n',
  'acked-in-log': 'every acked mutation is in the op log exactly once, at its acked rev (an ack as a no-op: not at all); nothing refused for good is in it',
  'no-double-apply': 'no mutation (an unknown outcome included) is in the log twice, and every logged mutation was sent by a client',
  'read-your-writes': 'after a client got an ack at rev r, every read of that task it begins (snapshot, REST read, pull) and every state it holds is at rev r or later',
  'monotonic-reads': 'a read a client begins after it received rev r of a task (in any way) is at rev r or later, and the state it holds never goes back',
  'gap-free-delivery': 'while a socket is subscribed, it receives every op of the task once, in rev order (its own acks in place of its ops)',
  'states-agree': 'every state a client held at rev r equals the op log replayed to r (so clients at the same rev agree)',
  'replicas-converge': 'after the quiet period every replica equals the server snapshot, which equals the op log replayed from create()',
} as const

export type Property = keyof typeof PROPERTIES

function add<K, V>(map: Map<K, V[]>, k: K, v: V): void {
  const list = map.get(k)
  if (list) list.push(v)
  else map.set(k, [v])
}

const key = (clientId: string | null | undefined, seq: number | null | undefined) => `${clientId}:${seq}`

/** Content hash after each rev of the log replayed from create() (index = rev); null where the log cannot be replayed. */
function replay(ops: OpEvent[]): { hashes: Map<number, string>; error: string | null } {
  const hashes = new Map<number, string>()
  let content = taskType.create()
  for (const o of ops) {
    try {
      content = taskType.apply(content, o.op)
    } catch (err) {
      return { hashes, error: `rev ${o.rev} does not apply: ${(err as Error).message}` }
    }
    hashes.set(o.rev, hashOf(content))
  }
  return { hashes, error: null }
}

/** The log entry as it appears in an excerpt. */
const logged = (o: OpEvent) => ({ log: true, taskId: o.taskId, rev: o.rev, clientId: o.clientId, seq: o.seq, op: o.op })

export function check(events: HistoryEvent[], server: Map<string, ServerTask>, extra: { unsettled?: Violation[] } = {}): Verdict[] {
  const verdicts = new Map<Property, Verdict>()
  for (const [property, description] of Object.entries(PROPERTIES) as [Property, string][]) {
    verdicts.set(property, { property, description, ok: true, checked: 0, violations: [] })
  }
  const fail = (p: Property, message: string, excerpt: unknown[]) => {
    const v = verdicts.get(p)!
    v.ok = false
    v.violations.push({ message, excerpt })
  }
  const checked = (p: Property, n = 1) => (verdicts.get(p)!.checked += n)

  // ── the log ──
  const byKey = new Map<string, OpEvent[]>()
  const replays = new Map<string, ReturnType<typeof replay>>()
  for (const task of server.values()) {
    checked('total-order')
    const revs = task.ops.map((o) => o.rev)
    const expected = Array.from({ length: revs.length }, (_, i) => i + 1)
    if (canonical(revs) !== canonical(expected)) {
      const bad = revs.findIndex((r, i) => r !== i + 1)
      fail('total-order', `task ${task.taskId}: log revs are not 1..${revs.length}`, task.ops.slice(Math.max(0, bad - 1), bad + 2).map(logged))
    }
    if (task.snapshot && task.snapshot.rev !== revs.length) fail('total-order', `task ${task.taskId}: snapshot at rev ${task.snapshot.rev}, log ends at ${revs.length}`, [{ snapshotRev: task.snapshot.rev }, ...task.ops.slice(-1).map(logged)])
    for (const o of task.ops) {
      if (o.clientId === null) continue
      const k = key(o.clientId, o.seq)
      add(byKey, k, o)
    }
    replays.set(task.taskId, replay(task.ops))
  }

  // ── mutations ──
  const invokes = new Map<string, Ev<'invoke'>[]>()
  const acks = new Map<string, Ev<'ack'>[]>()
  const fails = new Map<string, Ev<'fail'>[]>()
  for (const e of events) {
    if (e.type === 'invoke') add(invokes, key(e.clientId, e.seq), e)
    else if (e.type === 'ack') add(acks, key(e.clientId, e.seq), e)
    else if (e.type === 'fail') add(fails, key(e.clientId, e.seq), e)
  }

  for (const [k, list] of acks) {
    const inLog = byKey.get(k) ?? []
    const sent = invokes.get(k) ?? []
    for (const ack of list) {
      checked('acked-in-log')
      const excerpt = [...sent.filter((i) => i.writer === ack.writer).slice(0, 1), ack, ...inLog.map(logged)]
      if (ack.noop) {
        if (inLog.length > 0) fail('acked-in-log', `${ack.writer} seq ${ack.seq} acked as a no-op at rev ${ack.rev}, but committed at rev ${inLog[0].rev}`, excerpt)
      } else if (inLog.length === 0) {
        fail('acked-in-log', `${ack.writer} seq ${ack.seq} acked at rev ${ack.rev} of ${ack.taskId}, but it is not in the log`, [...excerpt, ...logAt(server, ack.taskId, ack.rev)])
      } else if (inLog.length === 1 && (inLog[0].rev !== ack.rev || inLog[0].taskId !== ack.taskId)) {
        fail('acked-in-log', `${ack.writer} seq ${ack.seq} acked at rev ${ack.rev} of ${ack.taskId}, but logged at rev ${inLog[0].rev} of ${inLog[0].taskId}`, excerpt)
      }
    }
    // One (clientId, seq), two different mutations, both answered as done: only one of them can be in the log.
    const firsts = new Map<string, Ev<'invoke'>>()
    for (const i of sent) if (!firsts.has(i.writer)) firsts.set(i.writer, i)
    const ackedWriters = [...new Set(list.map((a) => a.writer))]
    if (ackedWriters.length > 1) {
      const shapes = new Set(ackedWriters.map((w) => firsts.get(w)).map((i) => (i ? canonical({ taskId: i.taskId, kind: i.kind, op: i.op }) : '?')))
      if (shapes.size > 1) {
        fail('acked-in-log', `${k}: different mutations of ${ackedWriters.join(' and ')} were all acked; the log holds at most one of them`, [...firsts.values(), ...list, ...inLog.map(logged)])
      }
    }
  }
  // Refused for good (and never acked since): nothing committed.
  for (const [k, list] of fails) {
    if (acks.has(k)) continue
    const last = list[list.length - 1]
    if (!last.definite) continue
    checked('acked-in-log')
    const inLog = byKey.get(k) ?? []
    if (inLog.length > 0) fail('acked-in-log', `${last.writer} seq ${last.seq} was refused with ${last.code}, but it is in the log at rev ${inLog[0].rev}`, [...(invokes.get(k) ?? []).slice(0, 1), last, ...inLog.map(logged)])
  }

  for (const [k, list] of byKey) {
    checked('no-double-apply')
    if (list.length > 1) fail('no-double-apply', `${k} is in the log ${list.length} times`, [...(invokes.get(k) ?? []).slice(0, 2), ...list.map(logged)])
    if (!invokes.has(k)) fail('no-double-apply', `${k} is in the log but no client sent it`, list.map(logged))
  }

  // ── what each client saw ──
  type Obs = Ev<'observe'>
  const perClientTask = new Map<string, (Obs | Ev<'ack'> | Ev<'state'>)[]>()
  // Reads of the current state (a replayed op is history the client asked for, not a read).
  const reads = new Set(['snapshot', 'read', 'deleted', 'view'])
  for (const e of events) {
    if (e.type !== 'observe' && e.type !== 'ack' && e.type !== 'state') continue
    const k = `${e.client}|${e.taskId}`
    add(perClientTask, k, e)
  }
  for (const list of perClientTask.values()) {
    // read-your-writes: an ack (its commit) bounds every read begun after it, and the states held after it.
    let floor: Ev<'ack'> | null = null
    // monotonic reads: what was received so far bounds the reads begun after it; held states only grow.
    const received: Obs[] = []
    let held: Ev<'state'> | null = null
    for (const e of list) {
      if (e.type === 'ack') {
        if (!e.noop && (!floor || e.rev > floor.rev)) floor = e
        continue
      }
      if (e.type === 'state') {
        if (e.final || e.rev === 0) continue
        checked('monotonic-reads')
        if (held && e.rev < held.rev) fail('monotonic-reads', `${e.client} went back from rev ${held.rev} to rev ${e.rev} of ${e.taskId}`, [held, e])
        checked('read-your-writes')
        if (floor && e.rev < floor.rev && e.t > floor.t) fail('read-your-writes', `${e.client} holds rev ${e.rev} of ${e.taskId} after its own commit at rev ${floor.rev}`, [floor, e])
        held = e
        continue
      }
      // An ack answers for the client's own write (a resend's, with the rev of its first commit): evidence, not a read.
      if (reads.has(e.what)) {
        checked('read-your-writes')
        if (floor && floor.t < e.t0 && e.rev < floor.rev) {
          fail('read-your-writes', `${e.client} read rev ${e.rev} of ${e.taskId} (${e.what}) after its own commit at rev ${floor.rev}`, [floor, e])
        }
        checked('monotonic-reads')
        const high = received.reduce<Obs | null>((m, r) => (r.t < e.t0 && (!m || r.rev > m.rev) ? r : m), null)
        if (high && e.rev < high.rev) fail('monotonic-reads', `${e.client} read rev ${e.rev} of ${e.taskId} (${e.what}) after it had received rev ${high.rev} (${high.what})`, [high, e])
      }
      if (e.what === 'ack' && e.noop) continue
      if (received.length === 0 || e.rev >= received[received.length - 1].rev) received.push(e)
      if (received.length > 64) received.splice(0, received.length - 64)
    }
  }

  // gap-free delivery, per socket and task, from each subscription's base.
  const heads = new Map<string, number | null>()
  for (const e of events) {
    if (e.type === 'subscribe') {
      const k = `${e.conn}|${e.taskId}`
      if (e.end) heads.delete(k)
      else heads.set(k, e.since)
      continue
    }
    if (e.type !== 'observe' || e.conn === 'rest') continue
    const k = `${e.conn}|${e.taskId}`
    if (!heads.has(k)) continue
    const head = heads.get(k)!
    if (e.what === 'snapshot') heads.set(k, e.rev)
    else if (e.what === 'deleted') heads.delete(k)
    else if (head !== null && (e.what === 'op' || (e.what === 'ack' && !e.noop))) {
      checked('gap-free-delivery')
      if (e.rev === head + 1) heads.set(k, e.rev)
      else if (e.rev > head + 1) {
        fail('gap-free-delivery', `${e.conn} got ${e.what} ${e.rev} of ${e.taskId} right after rev ${head}: revs ${head + 1}..${e.rev - 1} never came`, [...precedingOn(events, e, 3), e])
        heads.set(k, e.rev)
      } else if (e.what === 'op') {
        fail('gap-free-delivery', `${e.conn} got op ${e.rev} of ${e.taskId} again (or out of order) after rev ${head}`, [...precedingOn(events, e, 3), e])
      }
    }
  }

  // ── states ──
  const atRev = new Map<string, Ev<'state'>[]>()
  for (const e of events) {
    if (e.type !== 'state' || e.rev === 0) continue
    checked('states-agree')
    const r = replays.get(e.taskId)
    const expected = r?.hashes.get(e.rev)
    const k = `${e.taskId}@${e.rev}`
    add(atRev, k, e)
    if (!r) fail('states-agree', `${e.client} holds task ${e.taskId}, which the server does not have`, [e])
    else if (expected === undefined) fail('states-agree', `${e.client} holds rev ${e.rev} of ${e.taskId}, past the log (${server.get(e.taskId)?.ops.length ?? 0} revs)`, [e])
    else if (expected !== e.hash) {
      const agreeing = (atRev.get(k) ?? []).find((x) => x.hash === expected)
      fail('states-agree', `${e.client} holds rev ${e.rev} of ${e.taskId} with content other than the log replayed to ${e.rev}`, [
        ...(agreeing ? [agreeing] : []),
        e,
        ...logAt(server, e.taskId, e.rev),
      ])
    }
  }

  for (const task of server.values()) {
    checked('replicas-converge')
    const r = replays.get(task.taskId)!
    if (r.error) fail('replicas-converge', `task ${task.taskId}: the log does not replay: ${r.error}`, [])
    else if (task.snapshot && hashOf(task.snapshot as unknown as Record<string, unknown>) !== r.hashes.get(task.snapshot.rev)) {
      fail('replicas-converge', `task ${task.taskId}: the snapshot at rev ${task.snapshot.rev} differs from the log replayed`, [{ snapshot: task.snapshot }, ...task.ops.slice(-2).map(logged)])
    }
  }
  for (const e of events) {
    if (e.type !== 'state' || !e.final) continue
    checked('replicas-converge')
    const snap = server.get(e.taskId)?.snapshot
    if (!snap) continue
    if (e.rev !== snap.rev || e.hash !== hashOf(snap as unknown as Record<string, unknown>)) {
      fail('replicas-converge', `${e.client} ended with rev ${e.rev} of ${e.taskId}; the server has rev ${snap.rev}${e.rev === snap.rev ? ' with other content' : ''}`, [e, { serverRev: snap.rev, serverHash: hashOf(snap as unknown as Record<string, unknown>) }])
    }
  }
  for (const v of extra.unsettled ?? []) fail('replicas-converge', v.message, v.excerpt)

  return [...verdicts.values()]
}

/** The log entries around `rev` of a task (for excerpts). */
function logAt(server: Map<string, ServerTask>, taskId: string, rev: number): unknown[] {
  const ops = server.get(taskId)?.ops ?? []
  return ops.filter((o) => o.rev >= rev - 1 && o.rev <= rev).map(logged)
}

/** The last `n` events of the same socket and task before `e`. */
function precedingOn(events: HistoryEvent[], e: Ev<'observe'>, n: number): HistoryEvent[] {
  const out: HistoryEvent[] = []
  for (let i = events.indexOf(e) - 1; i >= 0 && out.length < n; i--) {
    const x = events[i]
    if ((x.type === 'observe' || x.type === 'subscribe') && x.conn === e.conn && x.taskId === e.taskId) out.unshift(x)
  }
  return out
}
