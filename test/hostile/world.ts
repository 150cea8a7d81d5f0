/**
 * The world the generated suites probe: the real app, its OpenAPI operations, and
 * two organizations A and B, each with a member, a spare device, a project, a
 * task, a comment, a conflict, a bound clientId and a sync log line. Everything B
 * owns carries a marker string, so an answer that leaks B's data shows it.
 *
 * Ids are found by name: a path parameter takes the kind of the collection
 * before it (`/api/projects/{id}` → project), a field its own name (`projectId`
 * → project, `id` in a create → the collection's kind). A kind this file does
 * not know (a route added later) is seeded through the POST of its collection,
 * with bodies generated from its schema; if that cannot be done the suite says so.
 */
import fc from 'fast-check'
import { createHash, randomUUID } from 'node:crypto'
import postgres from 'postgres'
import { startTestApp, api, registerOwner, addMember, type Session, type TestApp } from '../helpers/app.js'
import { fillPath, loadOperations, pathParams, send, type Operation } from '../helpers/openapi.js'
import { arbitraryOf, type IdSource } from './arbitrary.js'

interface Teardown {
  teardown(fn: () => unknown): void
}

/** Seed and size of the generated runs: `HOSTILE_SEED`, `HOSTILE_RUNS` (cases per operation) for longer runs. */
export const SEED = Number(process.env.HOSTILE_SEED ?? 20261206)
export const RUNS = Number(process.env.HOSTILE_RUNS ?? 8)

export interface Org {
  owner: Session & { password: string }
  member: Session & { password: string }
  marker: string
  /** kind → ids of that kind in this organization (the first is the one probes aim at). */
  ids: Record<string, string[]>
}

export interface World {
  test: TestApp
  url: string
  ops: Operation[]
  a: Org
  b: Org
  sql: postgres.Sql
  /** Ids of org for a path parameter of an operation. */
  pathIds(op: Operation, org: Org): Record<string, string>
  /** IdSource for an operation's fields, in org. */
  fieldIds(op: Operation, org: Org): IdSource
  /** A digest of every row (of one organization, or all): equal digests, nothing committed. */
  fingerprint(orgId?: string): Promise<string>
}

const SEGMENT_KINDS: Record<string, string> = { users: 'user', devices: 'device', projects: 'project', tasks: 'task', comments: 'comment', conflicts: 'conflict', attachments: 'attachment', chunks: 'chunk' }
const FIELD_KINDS: Record<string, string> = {
  userId: 'user',
  assigneeId: 'user',
  authorId: 'user',
  incomingUserId: 'user',
  deviceId: 'device',
  projectId: 'project',
  taskId: 'task',
  parentId: 'comment',
  commentId: 'comment',
  conflictId: 'conflict',
  clientId: 'client',
  attachmentId: 'attachment',
}

/** `/api/tasks/{id}/comments` → 'task' for `id`. */
export function kindOfParam(path: string, param: string): string {
  const segments = path.split('/')
  const i = segments.indexOf(`{${param}}`)
  const before = segments[i - 1] ?? ''
  if (param !== 'id' && param.endsWith('Id')) return kindOfField(param, path) ?? before
  return SEGMENT_KINDS[before] ?? before.replace(/s$/, '')
}

/** The kind a field name refers to; `id` is the kind of the collection the operation creates in. */
export function kindOfField(name: string, path: string): string | undefined {
  if (name === 'id') {
    const last = path.split('/').filter((s) => s && !s.startsWith('{')).pop() ?? ''
    return SEGMENT_KINDS[last] ?? last.replace(/s$/, '')
  }
  if (FIELD_KINDS[name]) return FIELD_KINDS[name]
  return name.endsWith('Id') ? name.slice(0, -2) : undefined
}

/** How many bound clientIds each organization has to be probed with. */
const CLIENT_IDS = 16

async function buildOrg(url: string, marker: string): Promise<Org> {
  const owner = await registerOwner(url, { orgName: `Org ${marker}`, displayName: `Owner ${marker}` })
  const member = await addMember(url, owner.accessToken, 'member')
  const c = api(url, owner.accessToken)
  const must = async <T>(res: Promise<{ status: number; body: T }>, what: string): Promise<T> => {
    const r = await res
    if (r.status >= 300) throw new Error(`world: ${what} answered ${r.status} ${JSON.stringify(r.body)}`)
    return r.body
  }
  const device = await must(c.post('/api/devices', { name: `spare ${marker}`, platform: 'test' }), 'a device')
  const project = await must(c.post('/api/projects', { name: `Project ${marker}` }), 'a project')
  const task = await must(c.post('/api/tasks', { title: `Task ${marker}`, description: marker, projectId: project.id, tags: [marker] }), 'a task')
  const comment = await must(c.post(`/api/tasks/${task.id}/comments`, { body: `Comment ${marker}` }), 'a comment')
  // Two assignments based on the same rev: a conflict to read and resolve.
  await must(c.patch(`/api/tasks/${task.id}`, { op: { assigneeId: { set: owner.user.id } }, baseRev: 1 }), 'an assignment')
  await must(c.patch(`/api/tasks/${task.id}`, { op: { assigneeId: { set: member.user.id } }, baseRev: 1 }), 'a concurrent assignment')
  const conflicts = await must(c.get('/api/sync/conflicts'), 'the conflict queue')
  // Bound clientIds, one per probe that names one: a clientId A's probe used becomes A's own
  // client too (they are scoped to the organization), so no probe may reuse another's.
  const clientIds: string[] = []
  for (let i = 0; i < CLIENT_IDS; i++) {
    const clientId = randomUUID()
    const op = { title: [0, '!'] }
    await must(c.post('/api/sync/push', { clientId, mutations: [{ seq: 1, kind: 'op', taskId: task.id, baseRev: 3 + i, op }] }), 'a push')
    clientIds.push(clientId)
  }
  await must(c.get('/api/sync/pull'), 'a pull')
  // A completed attachment (one chunk) and an upload left open, so every attachment route has a target.
  const attachment = await seedAttachment(url, owner.accessToken, task.id, Buffer.from(`Attachment ${marker}`), true)
  const upload = await seedAttachment(url, owner.accessToken, task.id, Buffer.from(`Upload ${marker}`), false)
  return {
    owner,
    member,
    marker,
    ids: {
      user: [member.user.id, owner.user.id],
      device: [device.id],
      project: [project.id],
      task: [task.id],
      comment: [comment.id],
      conflict: [(conflicts as any).items[0].id],
      client: clientIds,
      attachment: [attachment, upload],
      // Chunk numbers of the attachment routes.
      chunk: ['0'],
    },
  }
}

async function seedAttachment(url: string, token: string, taskId: string, bytes: Buffer, finish: boolean): Promise<string> {
  const id = randomUUID()
  const sha256 = createHash('sha256').update(bytes).digest('hex')
  const c = api(url, token)
  const opened = await c.post(`/api/tasks/${taskId}/attachments`, { id, name: 'seed.txt', contentType: 'text/plain', size: bytes.length, sha256 })
  if (opened.status !== 201) throw new Error(`world: an attachment answered ${opened.status} ${JSON.stringify(opened.body)}`)
  if (!finish) return id
  const put = await fetch(`${url}/api/tasks/${taskId}/attachments/${id}/chunks/0`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' },
    body: Uint8Array.from(bytes),
  })
  if (put.status !== 200) throw new Error(`world: an attachment chunk answered ${put.status}`)
  const done = await c.post(`/api/tasks/${taskId}/attachments/${id}/complete`)
  if (done.status !== 201) throw new Error(`world: completing an attachment answered ${done.status}`)
  return id
}

/**
 * A kind no seeder knows: create one through `POST` of its collection with bodies
 * generated from the schema, until one is accepted. Fails loudly otherwise, so a
 * new route is never silently left out of the cross-organization probes.
 */
async function seedKind(url: string, ops: Operation[], org: Org, kind: string, world: Pick<World, 'pathIds' | 'fieldIds'>): Promise<void> {
  const create = ops.find((o) => o.method === 'POST' && kindOfField('id', o.path) === kind && !o.path.endsWith('}'))
  if (!create) throw new Error(`world: no POST creates a "${kind}" (needed by a route with a ${kind} id): add a seeder to test/hostile/world.ts`)
  const samples = fc.sample(arbitraryOf(create.body, world.fieldIds(create, org)), { seed: SEED, numRuns: 50 })
  for (const body of samples) {
    const res = await send(url, 'POST', fillPath(create.path, world.pathIds(create, org)), { token: org.owner.accessToken, body })
    const id = (res.body as { id?: unknown })?.id
    if (res.status < 300 && typeof id === 'string') {
      org.ids[kind] = [id]
      return
    }
  }
  throw new Error(`world: ${create.key} accepted none of 50 generated bodies, so no "${kind}" exists to probe with: add a seeder to test/hostile/world.ts`)
}

export async function buildWorld(t: Teardown): Promise<World> {
  // No background dispatch or due-date scan: they change the database on their own
  // (events fanned out, deliveries), and the probes compare its digest around each request.
  const test = await startTestApp(t, { redis: false, env: { EVENT_DISPATCH: 'false', DUE_SCAN_INTERVAL_S: '0' } })
  const { url } = test
  const ops = await loadOperations(url)
  const a = await buildOrg(url, `alpha-${randomUUID().slice(0, 8)}`)
  const b = await buildOrg(url, `SECRET-B-${randomUUID().slice(0, 8)}`)
  const sql = postgres(test.databaseUrl, { max: 1, onnotice: () => {} })
  t.teardown(() => sql.end())

  const tables = await sql<{ name: string; scoped: boolean }[]>`
    select t.table_name as name,
      exists (select 1 from information_schema.columns c where c.table_schema = 'public' and c.table_name = t.table_name and c.column_name = 'org_id') as scoped
    from information_schema.tables t where t.table_schema = 'public' and t.table_type = 'BASE TABLE' order by 1`
  // A row as text without the search index's own columns: the search indexer (storage/search-index.ts)
  // re-computes them in the background for rows a commit marked stale, at any time, whatever a probe did.
  // The stale set (task_search_stale) is the indexer's too: left out.
  const ROW = `(to_jsonb(x) - 'search' - 'search_head')::text`
  const digest = (orgId?: string) =>
    tables
      .filter((tb) => tb.name !== 'task_search_stale')
      .filter((tb) => orgId === undefined || tb.scoped)
      .map((tb) => `select md5(coalesce(string_agg(${ROW}, '|' order by ${ROW}), '')) as h from "${tb.name}" x ${orgId === undefined ? '' : `where x.org_id = '${orgId}'`}`)
      .join(' union all ')

  const world: World = {
    test,
    url,
    ops,
    a,
    b,
    sql,
    pathIds(op, org) {
      return Object.fromEntries(pathParams(op.path).map((p) => [p, org.ids[kindOfParam(op.path, p)]?.[0] ?? randomUUID()]))
    },
    fieldIds(op, org) {
      return (name) => {
        const kind = kindOfField(name, op.path)
        if (!kind) return undefined
        // A create's own id must be new; the other ids name what exists.
        if (name === 'id' && op.method === 'POST') return [randomUUID()]
        return org.ids[kind]
      }
    },
    async fingerprint(orgId) {
      const rows = await sql.unsafe(`select md5(string_agg(h, ',')) as h from (${digest(orgId)}) d`)
      return rows[0].h as string
    },
  }
  // Kinds named by path parameters that no seeder made (routes added later).
  for (const op of ops) {
    for (const p of pathParams(op.path)) {
      const kind = kindOfParam(op.path, p)
      for (const org of [a, b]) if (!org.ids[kind]) await seedKind(url, ops, org, kind, world)
    }
  }
  return world
}
