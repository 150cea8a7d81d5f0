/**
 * Pull across two instances sharing PostgreSQL and Redis: a device looping on its
 * cursor (small pages, alternating instances) while writers on both instances
 * create, edit and delete concurrently ends with every task at its final rev and
 * every deletion seen; a commit held open across a pull arrives with the next one.
 */
import t from 'tap'
import { randomUUID } from 'node:crypto'
import postgres from 'postgres'
import { sql } from 'drizzle-orm'
import { startTestApp, registerOwner, api, type Api } from '../helpers/app.js'

const a = await startTestApp(t)
const b = await startTestApp(t, { databaseUrl: a.databaseUrl, redisPrefix: a.redisPrefix })
const owner = await registerOwner(a.url)
const orgId = owner.organization.id
const onA = api(a.url, owner.accessToken)
const onB = api(b.url, owner.accessToken)

/** A device's local store, fed only by pull pages. */
class Device {
  tasks = new Map<string, { rev: number; title: string; status: string }>()
  deleted = new Set<string>()
  cursor: string | undefined
  pulls = 0

  /** One whole catch-up (all pages), alternating instances page by page. */
  async catchUp(apis: Api[], limit: number): Promise<void> {
    for (;;) {
      const res = await apis[this.pulls++ % apis.length].get(`/api/sync/pull?limit=${limit}${this.cursor ? `&cursor=${this.cursor}` : ''}`)
      if (res.status !== 200 || res.body.reset) throw new Error(`pull failed: ${res.status} ${JSON.stringify(res.body)}`)
      for (const task of res.body.tasks) {
        const known = this.tasks.get(task.id)
        if (!known || known.rev < task.rev) this.tasks.set(task.id, { rev: task.rev, title: task.title, status: task.status })
      }
      for (const stone of res.body.tombstones) {
        if (stone.kind !== 'task') continue
        this.tasks.delete(stone.id)
        this.deleted.add(stone.id)
      }
      this.cursor = res.body.cursor
      if (!res.body.hasMore) return
    }
  }
}

async function writer(client: Api, rounds: number, name: string): Promise<void> {
  const clientId = randomUUID()
  let seq = 0
  const mine: { id: string; rev: number }[] = []
  const push = async (m: object) => {
    const res = await client.post('/api/sync/push', { clientId, mutations: [{ seq: ++seq, ...m }] })
    if (res.status !== 200) throw new Error(`push failed: ${res.status} ${JSON.stringify(res.body)}`)
    return res.body.results[0]
  }
  for (let i = 0; i < rounds; i++) {
    const roll = i % 10
    if (roll % 4 === 0 || mine.length === 0) {
      const id = randomUUID()
      const r = await push({ kind: 'create', taskId: id, task: { title: `${name}-${i}` } })
      mine.push({ id, rev: r.rev })
    } else if (roll === 9 && mine.length > 1) {
      const [victim] = mine.splice(i % mine.length, 1)
      await push({ kind: 'op', taskId: victim.id, baseRev: victim.rev, op: { delete: true } })
    } else {
      const task = mine[i % mine.length]
      // Sometimes based on an old rev, so the sequencer transforms it.
      const baseRev = i % 3 === 0 ? 1 : task.rev
      const r = await push({ kind: 'op', taskId: task.id, baseRev, op: { title: [0, `${i}:`], status: { set: roll === 1 ? 'in_progress' : 'in_review' } } })
      if (r.status === 'applied') task.rev = r.rev
    }
  }
}

t.test('a puller on its cursor, with writers on both instances, converges on the server state', async (t) => {
  const device = new Device()
  let writing = true
  const writers = Promise.all([
    writer(onA, 40, 'a1'), writer(onA, 40, 'a2'), writer(onB, 40, 'b1'), writer(onB, 40, 'b2'),
  ]).finally(() => (writing = false))
  const puller = (async () => {
    while (writing) {
      await device.catchUp([onA, onB], 7)
      await new Promise((r) => setTimeout(r, 5))
    }
  })()
  await Promise.all([writers, puller])
  await device.catchUp([onB, onA], 7) // the last catch-up after every write was acked
  t.ok(device.pulls > 10, `the device pulled while writes were happening (${device.pulls} pages)`)

  const rows = await a.app.database.rows<{ id: string; rev: number; deleted: boolean; title: string }>(
    sql`select id, rev, deleted, content->>'title' as title from tasks where org_id = ${orgId}::uuid`,
  )
  const live = rows.filter((r) => !r.deleted)
  const dead = rows.filter((r) => r.deleted)
  t.ok(dead.length > 0 && live.length > 0, `${live.length} live and ${dead.length} deleted tasks`)
  t.same(
    [...device.tasks].map(([id, x]) => [id, x.rev, x.title]).sort(),
    live.map((r) => [r.id, Number(r.rev), r.title]).sort(),
    'every live task at its final rev and content',
  )
  t.same(dead.filter((r) => !device.deleted.has(r.id)).map((r) => r.id), [], 'every deletion seen')

  const quiet = await onA.get(`/api/sync/pull?cursor=${device.cursor}`)
  t.same([quiet.body.tasks.length, quiet.body.tombstones.length, quiet.body.hasMore], [0, 0, false], 'then nothing more')
})

t.test('a commit held open across a pull (another instance mid-commit) arrives with the next pull', async (t) => {
  const device = new Device()
  const clientId = randomUUID()
  const [slow, fast] = [randomUUID(), randomUUID()]
  await onA.post('/api/sync/push', { clientId, mutations: [{ seq: 1, kind: 'create', taskId: slow, task: { title: 'slow' } }] })
  await device.catchUp([onA], 100)

  const other = postgres(a.databaseUrl, { max: 1, onnotice: () => {} })
  t.teardown(() => other.end())
  let release!: () => void
  const held = new Promise<void>((r) => (release = r))
  let opened!: () => void
  const isOpen = new Promise<void>((r) => (opened = r))
  const late = other.begin(async (tx) => {
    // Takes its transaction id now; commits only when released.
    await tx`update tasks set rev = rev + 1, content = jsonb_set(content, '{title}', '"slow, committed late"') where org_id = ${orgId} and id = ${slow}`
    // As a commit does: the task's change_xid (pull's) in the same transaction.
    await tx`update task_changes set change_xid = pg_current_xact_id() where org_id = ${orgId} and task_id = ${slow}`
    opened()
    await held
  })
  await isOpen
  await onB.post('/api/sync/push', { clientId, mutations: [{ seq: 2, kind: 'create', taskId: fast, task: { title: 'fast' } }] })
  await device.catchUp([onB], 100)
  t.same(device.tasks.get(fast)?.title, 'fast', 'the later transaction, committed, is pulled')
  t.same(device.tasks.get(slow)?.title, 'slow', 'the open one is not visible yet')
  release()
  await late
  await device.catchUp([onA], 100)
  t.same(device.tasks.get(slow), { rev: 2, title: 'slow, committed late', status: 'todo' }, 'the late commit is not skipped')
})
