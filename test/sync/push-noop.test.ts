/**
 * POST /api/sync/push marks an op that committed nothing (identity after
 * normalize, or after transform against what was committed since its baseRev)
 * `noop: true`, as the socket ack does; a real commit does not carry it, and a
 * resend carries it exactly when the original did (its answer is the original's).
 */
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { startTestApp, registerOwner, api } from '../helpers/app.js'
import { TestSocket } from '../ws/helpers.js'

const a = await startTestApp(t)
const owner = await registerOwner(a.url)
const orgId = owner.organization.id
const client = api(a.url, owner.accessToken)

t.test('identity ops are applied with the current rev and noop: true', async (t) => {
  const clientId = randomUUID()
  const taskId = randomUUID()
  const batch = [
    { seq: 1, kind: 'create', taskId, task: { title: 'abc' } },
    { seq: 2, kind: 'op', taskId, baseRev: 1, op: { title: [{ d: 3 }] } },
    // Based on rev 1: deletes a character seq 2 already deleted, so it is identity after transform.
    { seq: 3, kind: 'op', taskId, baseRev: 1, op: { title: [1, { d: 1 }] } },
    // Identity after normalize.
    { seq: 4, kind: 'op', taskId, baseRev: 2, op: {} },
    { seq: 5, kind: 'op', taskId, baseRev: 2, op: { title: ['x'] } },
  ]
  const res = await client.post('/api/sync/push', { clientId, mutations: batch })
  t.equal(res.status, 200)
  t.same(res.body.results, [
    { seq: 1, status: 'applied', rev: 1 },
    { seq: 2, status: 'applied', rev: 2 },
    { seq: 3, status: 'applied', rev: 2, noop: true },
    { seq: 4, status: 'applied', rev: 2, noop: true },
    { seq: 5, status: 'applied', rev: 3 },
  ], 'noop only where nothing was committed; real commits carry no noop field')
  t.equal((await a.app.sequencer.snapshot(orgId, taskId))!.title, 'x')

  const again = await client.post('/api/sync/push', { clientId, mutations: batch })
  t.same(
    again.body.results,
    [1, 2, 2, 2, 3].map((rev, i) => ({ seq: i + 1, status: 'duplicate', rev, ...(i === 2 || i === 3 ? { noop: true } : {}) })),
    'a resend is a duplicate with the original rev, noop where the original committed nothing',
  )
})

t.test('a socket resend of an op that committed nothing is acked as the no-op it was', async (t) => {
  const s = await TestSocket.ready(a.url, owner.accessToken)
  t.teardown(() => s.close())
  const taskId = randomUUID()
  await s.request({ type: 'create', taskId, seq: 1, task: { title: 'abc' } }, 'ack')
  await s.request({ type: 'op', taskId, baseRev: 1, seq: 2, op: { title: [{ d: 3 }] } }, 'ack', (m) => m.seq === 2)
  // Deletes what seq 2 deleted: identity after transform, recorded as a no-op at rev 2.
  const first = await s.request({ type: 'op', taskId, baseRev: 1, seq: 3, op: { title: [1, { d: 1 }] } }, 'ack', (m) => m.seq === 3)
  t.match(first, { rev: 2, noop: true })
  await s.request({ type: 'op', taskId, baseRev: 2, seq: 4, op: { title: ['x'] } }, 'ack', (m) => m.seq === 4)
  // The answer to seq 3 was lost, say: the resend gets the original ack, not a claim of a commit at rev 2.
  const again = await s.request({ type: 'op', taskId, baseRev: 1, seq: 3, op: { title: [1, { d: 1 }] } }, 'ack', (m) => m.seq === 3)
  t.same({ rev: again.rev, noop: again.noop }, { rev: 2, noop: true })
  const resentCommit = await s.request({ type: 'op', taskId, baseRev: 1, seq: 2, op: { title: [{ d: 3 }] } }, 'ack', (m) => m.seq === 2)
  t.same({ rev: resentCommit.rev, noop: resentCommit.noop }, { rev: 2, noop: undefined }, 'a resent commit carries no noop')
})
