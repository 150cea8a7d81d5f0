/**
 * An op far behind (a device back after a day) is transformed against every op
 * committed since its base, in rev order, as before, and the event loop runs
 * between slices of that work instead of waiting for all of it.
 */
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { MemoryHub } from '../../src/bus/memory.js'
import { DEFAULT_LIMITS, makeTaskType, type TaskOp } from '../../src/domain/index.js'
import { MemoryTaskStore } from '../../src/storage/memory-task-store.js'
import { memoryInstance, principal, replay } from './helpers.js'

t.test('an edit 600 revs behind: transformed past each op in order, conflicts kept, the loop not held', async (t) => {
  const store = new MemoryTaskStore()
  const { sequencer } = memoryInstance(t, store, new MemoryHub())
  const orgId = randomUUID()
  const [alice, bob] = [principal(orgId), principal(orgId)]
  const taskId = randomUUID()
  await sequencer.create({ principal: alice, taskId, clientId: null, seq: null, init: { title: 'ab' } })
  const committed: TaskOp[] = []
  for (let rev = 1; rev <= 600; rev++) {
    const op: TaskOp = rev === 300 ? { assigneeId: { set: alice.userId } } : rev % 2 ? { title: [1, 'x'] } : { title: ['x'] }
    const r = await sequencer.submit({ principal: alice, taskId, baseRev: rev, clientId: null, seq: null, op })
    t.equal(r.rev, rev + 1)
    committed.push(op)
  }
  // What the contract says the far-behind op becomes: transform(a, committed, 'left') for each, in rev order.
  const type = makeTaskType(DEFAULT_LIMITS)
  const late: TaskOp = { title: [2, '!'], assigneeId: { set: bob.userId } }
  let expected: TaskOp = late
  for (const c of committed) expected = type.transform(expected, c, 'left')

  let ticks = 0
  let ticking = true
  const tick = () => {
    ticks++
    if (ticking) setImmediate(tick)
  }
  setImmediate(tick)
  const before = ticks
  const r = await sequencer.submit({ principal: bob, taskId, baseRev: 1, clientId: null, seq: null, op: late })
  ticking = false
  t.equal(r.rev, 602)
  t.same(r.event!.op, expected, 'the op committed is the contract’s transform, op by op')
  t.ok(ticks - before >= 4, `the event loop ran while 600 ops were transformed (${ticks - before} turns)`)
  t.same(r.conflicts.map((c) => c.field), ['assigneeId'], 'the conflict with the op at rev 301 is recorded')
  const snap = (await sequencer.snapshot(orgId, taskId))!
  t.equal(snap.assigneeId, bob.userId, 'last writer in server order')
  t.ok(snap.title.endsWith('!'), 'the late insert kept its place after the original text')
  const { content, revs } = await replay(store, orgId, taskId)
  t.equal(revs.length, 602)
  t.equal(content.title, snap.title, 'the op log replays to the snapshot')
})
