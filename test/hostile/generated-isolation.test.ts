/**
 * Every operation of /docs/json × another organization's ids, wherever an id goes:
 * path parameters, query filters, body fields (found in the schemas by format and
 * name), and the ids inside task content. Organization A's owner asks with B's id,
 * then with a random id: the two answers must be the same (status, error code and
 * shape), a path id must be 404, never 403, and nothing of B may appear in the
 * answer. At the end, B's rows are exactly as they were.
 */
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { fillPath, pathParams, type JsonSchema, type Operation } from '../helpers/openapi.js'
import { baselineOf, type IdSource } from './arbitrary.js'
import { buildWorld, kindOfField, kindOfParam, type World } from './world.js'
import { fire, queryOf } from './probe.js'

/** Path parameters that are not ids of anything an organization owns (an upload's chunk number is the same everywhere). */
const NOT_IDS = new Set<string>(['chunk'])

interface Slot {
  why: string
  kind: string
  /** Where the id goes. */
  place: 'path' | 'query' | 'body'
  /** Path parameter or query name, or the body path. */
  at: string | string[]
}

/** Body paths (key lists) of id fields: uuid strings, or strings named like ids. */
function bodySlots(s: JsonSchema | undefined, op: Operation, at: string[] = []): Slot[] {
  if (!s) return []
  if (Array.isArray(s.anyOf)) return s.anyOf.flatMap((b: JsonSchema) => bodySlots(b, op, at)).filter((x, i, all) => all.findIndex((y) => y.why === x.why) === i)
  if (s.type === 'array') return bodySlots(s.items, op, [...at, '0'])
  if (s.type === 'object' && s.properties) return Object.entries<JsonSchema>(s.properties).flatMap(([k, v]) => bodySlots(v, op, [...at, k]))
  const name = at[at.length - 1]
  // A nested `id` names what its parent is: `device.id` is a device.
  const field = name === 'id' && at.length > 1 && !/^\d+$/.test(at[at.length - 2]) ? `${at[at.length - 2]}Id` : name
  const typed = s.type === 'string' || (Array.isArray(s.anyOf) && s.anyOf.some((b: JsonSchema) => b.type === 'string'))
  if (!name || !(s.format === 'uuid' || (typed && name.endsWith('Id')))) return []
  const kind = kindOfField(field, op.path)
  return kind ? [{ why: `body ${at.join('.')}`, kind, place: 'body', at }] : []
}

/** Ids inside task content, which the schemas leave open (the op type reads them). */
const CONTENT_SLOTS: Record<string, Array<{ why: string; kind: string; body: (id: string, w: World) => unknown }>> = {
  'PATCH /api/tasks/{id}': [
    { why: 'op projectId.set', kind: 'project', body: (id) => ({ op: { projectId: { set: id } } }) },
    { why: 'op assigneeId.set', kind: 'user', body: (id) => ({ op: { assigneeId: { set: id } } }) },
  ],
  'POST /api/sync/push': [
    { why: 'create task.projectId', kind: 'project', body: (id) => ({ clientId: randomUUID(), mutations: [{ seq: 1, kind: 'create', taskId: randomUUID(), task: { title: 'x', projectId: id } }] }) },
    { why: 'op on the task', kind: 'task', body: (id) => ({ clientId: randomUUID(), mutations: [{ seq: 1, kind: 'op', taskId: id, baseRev: 1, op: { title: [0, 'x'] } }] }) },
    { why: 'op projectId.set', kind: 'project', body: (id, w) => ({ clientId: randomUUID(), mutations: [{ seq: 1, kind: 'op', taskId: w.a.ids.task[0], baseRev: 1, op: { projectId: { set: id } } }] }) },
    { why: 'comment edit', kind: 'comment', body: (id, w) => ({ clientId: randomUUID(), mutations: [{ seq: 1, kind: 'comment', taskId: w.a.ids.task[0], comment: { action: 'edit', commentId: id, body: 'x' } }] }) },
  ],
}

/** Bodies that get past an operation's own checks, so a path id is what decides. */
const VALID_BODIES: Record<string, unknown> = {
  'POST /api/sync/conflicts/{id}/resolve': { choose: 'incoming' },
}

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi
const TIME = /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z/g

/** The shape of an answer with ids, times, numbers and cursors abstracted: what must not differ. */
function signature(status: number, body: unknown): string {
  const norm = (v: unknown, key = ''): unknown => {
    if (typeof v === 'string') return /cursor|token/i.test(key) ? 'OPAQUE' : v.replace(UUID, 'ID').replace(TIME, 'TIME').replace(/[^\s"@]+@[^\s"@]+/g, 'EMAIL')
    if (typeof v === 'number') return 'N'
    if (Array.isArray(v)) return v.map((x) => norm(x))
    if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k.replace(UUID, 'ID'), norm(x, k)]))
    return v
  }
  return `${status} ${JSON.stringify(norm(body))}`
}

t.test("every operation × another organization's ids: answered as a random id, never 403, nothing of B", async (t) => {
  const world = await buildWorld(t)
  const { a, b } = world
  const bDigest = await world.fingerprint(b.owner.organization.id)
  const bIds = new Set(Object.values(b.ids).flat().concat([b.owner.user.id, b.owner.organization.id, b.owner.device.id, b.member.device.id]))
  let cases = 0
  let slotsTotal = 0
  let clientProbes = 0
  // A create naming its own id with B's id makes an entity of A with that id (ids are per
  // organization): those probes run last, so that entity cannot answer the other probes.
  const late: Array<() => Promise<void>> = []
  const problemsOf = new Map<string, string[]>()
  for (const op of world.ops) {
    const problems: string[] = []
    problemsOf.set(op.key, problems)
    const ids: IdSource = (name) => {
      const kind = kindOfField(name, op.path)
      if (kind === 'client' || (name === 'id' && op.method === 'POST')) return [randomUUID()]
      return world.fieldIds(op, a)(name)
    }
    const query = op.parameters.filter((p) => p.in === 'query')
    const slots: Slot[] = [
      ...pathParams(op.path).map((p): Slot => ({ why: `path ${p}`, kind: kindOfParam(op.path, p), place: 'path', at: p })),
      ...query.filter((p) => p.schema.format === 'uuid' || p.name.endsWith('Id')).flatMap((p): Slot[] => {
        const kind = kindOfField(p.name, op.path)
        return kind ? [{ why: `query ${p.name}`, kind, place: 'query', at: p.name }] : []
      }),
      ...bodySlots(op.body, op),
    ].filter((s) => !NOT_IDS.has(s.kind))
    const content = CONTENT_SLOTS[op.key] ?? []
    slotsTotal += slots.length + content.length
    const token = op.secured ? a.owner.accessToken : undefined

    const request = (slot: Slot | null, id: string, bodyOf?: (id: string) => unknown) => {
      const params = world.pathIds(op, a)
      if (slot?.place === 'path') params[slot.at as string] = id
      const q: Record<string, unknown> = Object.fromEntries(query.filter((p) => p.required).map((p) => [p.name, baselineOf(p.schema, ids, p.name)]))
      if (slot?.place === 'query') q[slot.at as string] = id
      // A body slot needs its field present (every optional field filled); otherwise the simplest valid body.
      let body = bodyOf ? bodyOf(id) : op.key in VALID_BODIES ? structuredClone(VALID_BODIES[op.key]) : op.body ? baselineOf(op.body, ids, '', slot?.place === 'body') : undefined
      if (slot?.place === 'body') {
        const path = slot.at as string[]
        let node: any = body
        for (const k of path.slice(0, -1)) node = node[k]
        node[path[path.length - 1]] = id
      }
      return { why: '', path: fillPath(op.path, params), query: queryOf(q), token, body: body === undefined ? undefined : JSON.stringify(body) }
    }

    const compare = async (why: string, kind: string, make: (id: string) => ReturnType<typeof request>) => {
      // A clientId is taken once: the probe makes it A's own client as well (clientIds are per organization).
      const foreign = kind === 'client' ? b.ids.client[clientProbes++] : b.ids[kind]?.[0]
      if (!foreign) return void problems.push(`${why}: organization B has no ${kind} to probe with`)
      cases += 2
      const theirs = await fire(world, op, { ...make(foreign), why })
      const random = await fire(world, op, { ...make(randomUUID()), why })
      const where = `${why} (B's ${kind})`
      if (theirs.status === 403) problems.push(`${where}: 403 reveals that it exists`)
      if (signature(theirs.status, theirs.body) !== signature(random.status, random.body)) {
        problems.push(`${where}: answered ${theirs.status} ${theirs.text.slice(0, 160)} but a random id ${random.status} ${random.text.slice(0, 160)}`)
      }
      if (theirs.text.includes(b.marker)) problems.push(`${where}: B's data in the answer`)
      const leaked = [...theirs.text.matchAll(UUID)].map((m) => m[0].toLowerCase()).filter((x) => x !== foreign && bIds.has(x))
      if (leaked.length > 0) problems.push(`${where}: B's ids ${leaked.join(', ')} in the answer`)
    }

    const ownId = (s: Slot) => s.place === 'body' && op.method === 'POST' && (s.at as string[]).join('.') === 'id'
    for (const slot of slots.filter((s) => !ownId(s))) await compare(slot.why, slot.kind, (id) => request(slot, id))
    for (const c of content) await compare(c.why, c.kind, (id) => request(null, id, (x) => c.body(x, world)))
    for (const slot of slots.filter(ownId)) late.push(() => compare(slot.why, slot.kind, (id) => request(slot, id)))
  }
  for (const probe of late) await probe()
  for (const op of world.ops) {
    const problems = problemsOf.get(op.key)!
    t.same(problems, [], `${op.key}`)
  }
  t.equal(await world.fingerprint(b.owner.organization.id), bDigest, "B's rows are untouched")
  t.comment(`${cases} requests over ${slotsTotal} id slots of ${world.ops.length} operations`)
})
