/**
 * The tombstone horizon end to end on two instances: housekeeping purges old
 * deletions exactly once, a device offline since before them is told to reset,
 * and a full pull brings it to the server's state, whose cursor works at once.
 * The sync log records each push and pull.
 */
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { sql } from 'drizzle-orm'
import { startTestApp, registerOwner, addMember, api, type Api } from '../helpers/app.js'

const a = await startTestApp(t)
const b = await startTestApp(t, { databaseUrl: a.databaseUrl, redisPrefix: a.redisPrefix })
const owner = await registerOwner(a.url)
const orgId = owner.organization.id
const onA = api(a.url, owner.accessToken)
const onB = api(b.url, owner.accessToken)
const clientId = randomUUID()
let seq = 0

async function push(client: Api, mutations: object[]) {
  const res = await client.post('/api/sync/push', { clientId, mutations: mutations.map((m) => ({ seq: ++seq, ...m })) })
  if (res.status !== 200) throw new Error(JSON.stringify(res.body))
  return res.body.results
}

async function fullCatchUp(client: Api, cursor?: string) {
  const tasks = new Map<string, number>()
  const tombstones: string[] = []
  for (;;) {
    const res = await client.get(`/api/sync/pull?limit=3${cursor ? `&cursor=${cursor}` : ''}`)
    if (res.body.reset) return { reset: true as const }
    for (const x of res.body.tasks) tasks.set(x.id, x.rev)
    for (const x of res.body.tombstones) tombstones.push(x.id)
    cursor = res.body.cursor
    if (!res.body.hasMore) return { reset: false as const, tasks, tombstones, cursor: cursor! }
  }
}

t.test('offline past the horizon: reset, then a full pull converges', async (t) => {
  const ids = Array.from({ length: 6 }, () => randomUUID())
  await push(onA, ids.map((taskId) => ({ kind: 'create', taskId, task: { title: 'x' } })))
  const offline = await fullCatchUp(onA)
  if (offline.reset) throw new Error('reset')
  t.equal(offline.tasks.size, 6)

  await push(onB, [
    { kind: 'op', taskId: ids[0], baseRev: 1, op: { delete: true } },
    { kind: 'op', taskId: ids[1], baseRev: 1, op: { delete: true } },
    { kind: 'op', taskId: ids[2], baseRev: 1, op: { title: [1, 'y'] } },
  ])
  const online = await fullCatchUp(onB, offline.cursor)
  if (online.reset) throw new Error('reset')
  t.same(online.tombstones.sort(), [ids[0], ids[1]].sort(), 'a device online now sees the deletions')

  // 91 days later, both instances' timers fire at once: one purges.
  const later = new Date(Date.now() + 91 * 86_400_000)
  const runs = await Promise.all([a, b].map((x) => x.app.housekeeping.run({ now: later, minIntervalMs: 3_600_000 })))
  t.equal(runs.filter((r) => r.ran).length, 1, 'housekeeping ran once across the two instances')
  const report = runs.find((r) => r.ran)!
  t.equal(report.purged!.tasks, 2, 'the two old deletions are purged')
  t.equal(await a.app.sequencer.snapshot(orgId, ids[0]), null, 'a purged task no longer reads (404)')

  t.same((await onB.get(`/api/sync/pull?cursor=${offline.cursor}`)).body, { reset: true }, 'the device offline since before the deletions must reset')

  const fresh = await fullCatchUp(onA)
  if (fresh.reset) throw new Error('reset')
  const live = await a.app.database.rows<{ id: string; rev: number }>(sql`select id, rev from tasks where org_id = ${orgId}::uuid and not deleted`)
  t.same([...fresh.tasks].sort(), live.map((r) => [r.id, Number(r.rev)]).sort(), 'the full pull is the server state')
  t.same(fresh.tombstones, [], 'with no tombstones to apply')
  const after = await fullCatchUp(onB, fresh.cursor)
  t.same([after.reset, after.reset ? 0 : after.tasks.size], [false, 0], 'and its cursor works from there')
})

t.test('the sync log records pushes and pulls, for admins', async (t) => {
  const member = await addMember(a.url, owner.accessToken, 'member')
  const denied = await api(a.url, member.accessToken).get('/api/sync/log')
  t.same([denied.status, denied.body.error.code], [403, 'forbidden'])

  // (The housekeeping run above, 91 days ahead, trimmed the older log.)
  await push(onA, [{ kind: 'create', taskId: randomUUID(), task: {} }, { kind: 'op', taskId: randomUUID(), baseRev: 1, op: {} }])
  await push(onB, [{ kind: 'create', taskId: randomUUID(), task: {} }])
  const pushes = await onA.get(`/api/sync/log?kind=push&deviceId=${owner.device.id}`)
  t.equal(pushes.status, 200)
  t.ok(pushes.body.items.length >= 2)
  const first = pushes.body.items.at(-1)
  t.same([first.kind, first.clientId, first.deviceId, first.userId, first.counts], ['push', clientId, owner.device.id, owner.user.id, { mutations: 2, applied: 1, duplicate: 0, rejected: 1 }])
  t.ok(first.durationMs >= 0 && typeof first.at === 'string')

  const pulls = await onB.get('/api/sync/log?kind=pull&limit=2')
  t.equal(pulls.body.items.length, 2)
  t.ok(pulls.body.items.every((e: any) => e.kind === 'pull' && ('tasks' in e.counts || 'reset' in e.counts)))
  t.ok(pulls.body.items[0].id > pulls.body.items[1].id, 'newest first')
  const next = await onB.get(`/api/sync/log?kind=pull&limit=2&cursor=${pulls.body.nextCursor}`)
  t.ok(next.body.items[0].id < pulls.body.items[1].id, 'the next page continues')
  const resets = (await onA.get('/api/sync/log?kind=pull&limit=500')).body.items.filter((e: any) => e.counts.reset === 1)
  t.equal(resets.length, 1, 'the reset is logged too')
})

t.test('the in-server schedule fires', async (t) => {
  const c = await startTestApp(t, { databaseUrl: a.databaseUrl, redisPrefix: a.redisPrefix, env: { HOUSEKEEPING_INTERVAL_S: '1' } })
  const ranAt = async () =>
    (await c.app.database.rows<{ at: string | null }>(sql`select value->>'lastRunAt' as at from sync_state where key = 'housekeeping'`))[0]?.at
  const before = await ranAt()
  const deadline = Date.now() + 20_000
  while ((await ranAt()) === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200))
  t.not(await ranAt(), before, 'a scheduled run recorded itself')
})
