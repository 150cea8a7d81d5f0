/**
 * The digest of a (clientId, seq) record tells a resend from another mutation
 * (PROTOCOL.md section 3), on the in-memory store. Property: an op resent after
 * the client rebased it on any prefix of the ops committed before it (what an OT
 * client does with an unacknowledged op) is always recognised as the resend and
 * answered the original rev and noop; nothing is committed twice.
 */
import t from 'tap'
import fc from 'fast-check'
import { randomUUID } from 'node:crypto'
import { MemoryHub } from '../../src/bus/memory.js'
import { DEFAULT_LIMITS, makeTaskType, type TaskOp } from '../../src/domain/index.js'
import { TaskSyncError } from '../../src/protocol/errors.js'
import { MemoryTaskStore } from '../../src/storage/memory-task-store.js'
import { mutationDigest } from '../../src/sequencer/digest.js'
import { buildOp, content, rawOp } from '../domain/gen.js'
import { memoryInstance, principal } from './helpers.js'

const type = makeTaskType(DEFAULT_LIMITS)
const store = new MemoryTaskStore()
const { sequencer } = memoryInstance(t, store, new MemoryHub(), { replayWindow: 100 })
const orgId = randomUUID()
const alice = principal(orgId)
const bob = principal(orgId)

// Ops without a project move or a delete (those need a project row, or end the task).
const editOp = rawOp.map((r) => ({ ...r, projectId: undefined, delete: undefined }))

t.test('the digest is of a canonical encoding: key order does not matter, content does', async (t) => {
  const taskId = randomUUID()
  t.equal(
    mutationDigest({ kind: 'op', taskId, op: { status: { set: 'done' }, priority: { set: 2 } } }),
    mutationDigest({ kind: 'op', taskId, op: { priority: { set: 2 }, status: { set: 'done' } } }),
  )
  t.not(mutationDigest({ kind: 'op', taskId, op: { priority: { set: 2 } } }), mutationDigest({ kind: 'op', taskId, op: { priority: { set: 3 } } }))
  t.not(mutationDigest({ kind: 'op', taskId, op: {} }), mutationDigest({ kind: 'op', taskId: randomUUID(), op: {} }), 'the task is part of it')
})

t.test('property: a resend rebased on a prefix of the ops committed before it is the resend', async (t) => {
  await fc.assert(
    fc.asyncProperty(content, fc.array(editOp, { maxLength: 4 }), editOp, fc.nat(), async (s, others, ours, cut) => {
      const taskId = randomUUID()
      const clientId = randomUUID()
      const { deleted: _deleted, ...init } = { ...s, projectId: null }
      await sequencer.create({ principal: alice, taskId, clientId, seq: 1, init })
      let current = (await sequencer.snapshot(orgId, taskId))!
      const op = buildOp(pick(current), ours)
      for (const raw of others) {
        const snap = (await sequencer.snapshot(orgId, taskId))!
        await sequencer.submit({ principal: bob, taskId, baseRev: snap.rev, clientId: null, seq: null, op: buildOp(pick(snap), raw) })
      }
      const first = await sequencer.submit({ principal: alice, taskId, baseRev: 1, clientId, seq: 2, op })
      current = (await sequencer.snapshot(orgId, taskId))!
      // The client received `j` of the others' ops and rebased its op on them, as OT clients do.
      const j = cut % (others.length + 1)
      let rebased: TaskOp = op
      for (const c of await sequencer.opsSince(orgId, taskId, 2, j)) rebased = type.transform(rebased, c.op, 'left')
      const again = await sequencer.submit({ principal: alice, taskId, baseRev: 1 + j, clientId, seq: 2, op: rebased })
      const after = (await sequencer.snapshot(orgId, taskId))!
      return again.duplicate && again.rev === first.rev && again.noop === first.noop && after.rev === current.rev
    }),
    { numRuns: 150, seed: 7 },
  )
  t.pass('every rebased resend recognised, nothing committed twice')
})

t.test('another op under the seq is already_exists, and commits nothing', async (t) => {
  const taskId = randomUUID()
  const clientId = randomUUID()
  await sequencer.create({ principal: alice, taskId, clientId, seq: 1, init: { title: 'abc' } })
  await sequencer.submit({ principal: alice, taskId, baseRev: 1, clientId, seq: 2, op: { priority: { set: 1 } } })
  for (const op of [{ priority: { set: 2 } }, { title: ['x'] }, {}] as TaskOp[]) {
    try {
      await sequencer.submit({ principal: alice, taskId, baseRev: 1, clientId, seq: 2, op })
      t.fail(`${JSON.stringify(op)} was taken as a resend`)
    } catch (err) {
      t.equal((err as TaskSyncError).code, 'already_exists', JSON.stringify(op))
    }
  }
  t.match(await sequencer.snapshot(orgId, taskId), { rev: 2, priority: 1, title: 'abc' })
})

/** The content fields of a snapshot (what ops are built on). */
function pick(snap: Awaited<ReturnType<typeof sequencer.snapshot>> & object) {
  const { id: _id, rev: _rev, clock: _clock, createdAt: _c, updatedAt: _u, updatedBy: _b, ...rest } = snap
  return rest
}
