/**
 * The chaos checker on small hand-made histories: a consistent one passes every
 * property, and each property fails on the history that breaks it (so a green
 * chaos run means something).
 */
import t from 'tap'
import { taskType } from '../../src/domain/index.js'
import type { TaskOp } from '../../src/domain/types.js'
import type { OpEvent } from '../../src/protocol/messages.js'
import { check, type Property, type ServerTask } from '../../chaos/checker.js'
import type { HistoryEvent } from '../../chaos/history.js'
import { hashOf } from '../../chaos/world.js'

const TASK = '11111111-1111-4111-8111-111111111111'
const A = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa'
const B = 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb'

const op = (rev: number, o: TaskOp, clientId: string | null, seq: number | null): OpEvent => ({
  type: 'op', taskId: TASK, rev, op: o, userId: 'u', deviceId: 'd', clientId, seq, at: '2026-01-01T00:00:00.000Z',
})

/** rev 1 (a create by A, seq 1), rev 2 (A seq 2), rev 3 (B seq 1). */
const LOG = [op(1, { title: ['a'] }, A, 1), op(2, { title: [1, 'b'] }, A, 2), op(3, { status: { set: 'done' } }, B, 1)]

function server(ops: OpEvent[] = LOG, snapshotRev = ops.length): Map<string, ServerTask> {
  let content = taskType.create()
  for (const o of ops.slice(0, snapshotRev)) content = taskType.apply(content, o.op)
  const snapshot = { ...content, id: TASK, rev: snapshotRev, clock: {}, createdAt: '', updatedAt: '', updatedBy: 'u' }
  return new Map([[TASK, { taskId: TASK, snapshot, ops }]])
}

/** The content hash at each rev of LOG. */
function hashAt(rev: number): string {
  let content = taskType.create()
  for (const o of LOG.slice(0, rev)) content = taskType.apply(content, o.op)
  return hashOf(content)
}

let clock = 0
const at = () => ++clock
const invoke = (client: string, clientId: string, seq: number, o: unknown = {}): HistoryEvent => ({ type: 'invoke', t: at(), client, writer: client, clientId, seq, taskId: TASK, kind: 'op', op: o, via: 'ws' })
const ack = (client: string, clientId: string, seq: number, rev: number, noop = false): HistoryEvent => ({ type: 'ack', t: at(), client, writer: client, clientId, seq, taskId: TASK, rev, noop, via: 'ws' })
const observe = (client: string, conn: string, what: 'op' | 'snapshot' | 'ack' | 'read', rev: number, extra: object = {}): HistoryEvent => {
  const t = at()
  return { type: 'observe', t, t0: t, client, conn, taskId: TASK, what, rev, ...extra }
}
const sub = (client: string, conn: string, since: number | null): HistoryEvent => ({ type: 'subscribe', t: at(), client, conn, taskId: TASK, since })
const state = (client: string, rev: number, hash = hashAt(rev), final = false): HistoryEvent => ({ type: 'state', t: at(), client, taskId: TASK, rev, hash, ...(final ? { final } : {}) })

/** A history that keeps every promise: A writes revs 1–2, B rev 3, each sees everything. */
function consistent(): HistoryEvent[] {
  return [
    { type: 'invoke', t: at(), client: 'a', writer: 'a', clientId: A, seq: 1, taskId: TASK, kind: 'create', op: { title: 'a' }, via: 'ws' },
    ack('a', A, 1, 1),
    state('a', 1),
    sub('a', 'a#1', 1),
    sub('b', 'b#1', null),
    observe('b', 'b#1', 'snapshot', 1),
    state('b', 1),
    invoke('a', A, 2),
    observe('a', 'a#1', 'ack', 2, { clientId: A, seq: 2 }),
    ack('a', A, 2, 2),
    state('a', 2),
    observe('b', 'b#1', 'op', 2, { clientId: A, seq: 2 }),
    state('b', 2),
    invoke('b', B, 1),
    observe('b', 'b#1', 'ack', 3, { clientId: B, seq: 1 }),
    ack('b', B, 1, 3),
    state('b', 3),
    observe('a', 'a#1', 'op', 3, { clientId: B, seq: 1 }),
    state('a', 3),
    observe('a', 'rest', 'read', 3),
    state('a', 3, hashAt(3), true),
    state('b', 3, hashAt(3), true),
  ]
}

function failing(events: HistoryEvent[], srv = server()): Property[] {
  return check(events, srv).filter((v) => !v.ok).map((v) => v.property as Property)
}

t.test('a consistent history passes every property', async (t) => {
  const verdicts = check(consistent(), server())
  t.same(verdicts.filter((v) => !v.ok).map((v) => v.violations), [])
  t.ok(verdicts.every((v) => v.checked > 0), 'every property checked something')
})

t.test('total-order: a gap in the log, a snapshot behind it', async (t) => {
  t.same(failing(consistent(), server([LOG[0], { ...LOG[2] }])).includes('total-order'), true)
  t.same(failing(consistent(), server(LOG, 2)).includes('total-order'), true)
})

t.test('acked-in-log: an ack for an op the log does not hold, at another rev, a no-op that committed, a refused op that committed', async (t) => {
  t.ok(failing([...consistent(), invoke('a', A, 9), ack('a', A, 9, 3)]).includes('acked-in-log'), 'not in the log')
  t.ok(failing([...consistent(), ack('a', A, 2, 3)]).includes('acked-in-log'), 'at another rev')
  t.ok(failing([...consistent(), ack('b', B, 1, 3, true)]).includes('acked-in-log'), 'a no-op ack for a committed op')
  const refused: HistoryEvent = { type: 'fail', t: at(), client: 'b', writer: 'b', clientId: B, seq: 1, taskId: TASK, code: 'invalid_op', definite: true, via: 'ws' }
  const events = consistent().filter((e) => !(e.type === 'ack' && e.clientId === B))
  t.ok(failing([...events, refused]).includes('acked-in-log'), 'refused for good, yet committed')
  // Two writers sharing a clientId, each acked for its own different mutation under one seq.
  const tab: HistoryEvent[] = [{ ...(invoke('a/tab', A, 2, { title: ['z'] }) as object), writer: 'a/tab' } as HistoryEvent, { ...(ack('a/tab', A, 2, 2) as object), writer: 'a/tab' } as HistoryEvent]
  t.ok(failing([...consistent(), ...tab]).includes('acked-in-log'), 'two different mutations acked under one (clientId, seq)')
})

t.test('no-double-apply: one mutation twice in the log, a logged mutation nobody sent', async (t) => {
  const twice = [...LOG, op(4, { priority: { set: 2 } }, A, 2)]
  t.ok(failing(consistent(), server(twice)).includes('no-double-apply'))
  const phantom = [...LOG, op(4, { priority: { set: 2 } }, B, 7)]
  t.ok(failing(consistent(), server(phantom)).includes('no-double-apply'))
})

t.test('read-your-writes: a read older than the own commit, a state behind it', async (t) => {
  t.ok(failing([...consistent(), observe('b', 'rest', 'read', 2)]).includes('read-your-writes'))
  t.ok(failing([...consistent(), state('b', 2)]).includes('read-your-writes'))
})

t.test('monotonic-reads: a read older than what was received, a held state going back', async (t) => {
  t.ok(failing([...consistent(), observe('a', 'a#2', 'snapshot', 2)]).includes('monotonic-reads'))
  t.ok(failing([...consistent(), state('a', 2)]).includes('monotonic-reads'))
  // A replay the client asked for (since 1) is history, not a read: no violation.
  const replay = [...consistent(), sub('a', 'a#2', 1), observe('a', 'a#2', 'op', 2), observe('a', 'a#2', 'op', 3)]
  t.notOk(failing(replay).includes('monotonic-reads'))
})

t.test('gap-free-delivery: a skipped rev, a duplicate op, an ack out of its place', async (t) => {
  const base = consistent().filter((e) => !(e.type === 'observe' && e.client === 'b' && e.what === 'op'))
  t.ok(failing([...base, observe('b', 'b#1', 'op', 3)].slice()).includes('gap-free-delivery'), 'op 3 after the snapshot at 1')
  t.ok(failing([...consistent(), observe('a', 'a#1', 'op', 3)]).includes('gap-free-delivery'), 'op 3 twice')
  const early = [sub('c', 'c#1', 1), observe('c', 'c#1', 'ack', 3, { clientId: B, seq: 1 })]
  t.ok(failing([...consistent(), ...early]).includes('gap-free-delivery'), 'an ack two revs ahead')
})

t.test('states-agree: a client at rev 2 with other content; a rev past the log', async (t) => {
  t.ok(failing([...consistent(), state('c', 2, 'not-the-hash')]).includes('states-agree'))
  t.ok(failing([...consistent(), state('c', 9, hashAt(3))]).includes('states-agree'))
})

t.test('replicas-converge: a client that ended behind, or with other content; a snapshot the log does not give', async (t) => {
  t.ok(failing([...consistent(), state('c', 2, hashAt(2), true)]).includes('replicas-converge'))
  t.ok(failing([...consistent(), state('c', 3, 'x', true)]).includes('replicas-converge'))
  const srv = server()
  srv.get(TASK)!.snapshot!.title = 'something else'
  t.ok(failing(consistent(), srv).includes('replicas-converge'))
})
