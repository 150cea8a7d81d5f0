/**
 * Commit notices are written field by field with the event JSON the sequencer made
 * once: what another instance parses is the notice (without that local field), and
 * the first bytes still say who sent it, so an instance skips its own echo unparsed.
 */
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { MemoryBus, MemoryHub } from '../../src/bus/memory.js'
import { encodeNotice, publishNotice, subscribeOrgNotices, type CommitNotice, type OrgNotice } from '../../src/bus/notices.js'
import type { OpEvent } from '../../src/protocol/messages.js'

function commitNotice(from: string, extra: Partial<CommitNotice> = {}): CommitNotice {
  const taskId = randomUUID()
  const event: OpEvent = {
    type: 'op',
    taskId,
    rev: 7,
    op: { title: [3, 'é"\u2028'], customFields: { lt: { set: 12.5 } } },
    userId: randomUUID(),
    deviceId: randomUUID(),
    clientId: randomUUID(),
    seq: 9,
    at: new Date().toISOString(),
  }
  return { kind: 'op', from, orgId: randomUUID(), taskId, rev: 7, projectId: null, event, eventJson: JSON.stringify(event), ...extra }
}

t.test('an encoded commit notice parses to the notice, its event from eventJson, eventJson not on the wire', async (t) => {
  for (const extra of [{}, { projectId: randomUUID() }, { prevProjectId: randomUUID(), snapshot: { id: 'x', rev: 7 } as never }]) {
    const n = commitNotice('instance-a', extra)
    const text = encodeNotice(n)
    t.ok(text.startsWith('{"kind":"op","from":"instance-a",'), 'kind first, from second')
    const { eventJson, ...wire } = n
    t.same(JSON.parse(text), wire)
    t.notOk('eventJson' in JSON.parse(text))
    t.equal(eventJson, JSON.stringify(n.event))
  }
})

t.test('without eventJson (a notice read from the bus, published again) the event is serialized', async (t) => {
  const { eventJson: _, ...n } = commitNotice('instance-a')
  t.same(JSON.parse(encodeNotice(n)), n)
})

t.test('another instance gets the notice; the publisher skips its own echo', async (t) => {
  const hub = new MemoryHub()
  const a = new MemoryBus('a', hub)
  const b = new MemoryBus('b', hub)
  t.teardown(async () => {
    await a.close()
    await b.close()
  })
  const n = commitNotice('a')
  const atA: OrgNotice[] = []
  const atB: OrgNotice[] = []
  await subscribeOrgNotices(a, n.orgId, 'a', (x) => atA.push(x))
  await subscribeOrgNotices(b, n.orgId, 'b', (x) => atB.push(x))
  await publishNotice(a, n)
  await new Promise((r) => setImmediate(r))
  const { eventJson: _, ...wire } = n
  t.same(atB, [wire])
  t.same(atA, [], 'its own echo is skipped')
})
