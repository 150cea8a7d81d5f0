/**
 * Every operation of /docs/json × generated and hostile parameters and bodies:
 * fast-check values from the documented schemas (ids filled from the world so
 * requests reach the handlers), then mutations (wrong types, missing and extra
 * fields, huge, deep, NUL, unpaired surrogates, bytes that are not UTF-8, bodies
 * that are not objects, wrong content types) and hostile path and query values.
 * Every answer: a documented 4xx in the error shape or a documented 2xx valid
 * against its schema; never a 5xx, never a hang; a refusal commits nothing.
 * Seeded: HOSTILE_SEED, HOSTILE_RUNS (generated cases per operation) to go further.
 */
import t from 'tap'
import fc from 'fast-check'
import { fillPath, pathParams, type Operation } from '../helpers/openapi.js'
import { arbitraryOf, baselineOf, hostileBodies, HOSTILE_PATH_VALUES, HOSTILE_QUERY_VALUES } from './arbitrary.js'
import { buildWorld, RUNS, SEED, type World } from './world.js'
import { queryOf, runProbes, type Probe } from './probe.js'

/** Operations that remove what later probes aim at run last. */
const destructive = (op: Operation) => op.method === 'DELETE' || /\/(archive|logout)$/.test(op.path)

function probesOf(world: World, op: Operation, index: number): Probe[] {
  const seed = SEED + index
  const org = world.a
  const token = op.secured ? org.owner.accessToken : undefined
  const ids = world.fieldIds(op, org)
  const path = fillPath(op.path, world.pathIds(op, org))
  const query = op.parameters.filter((p) => p.in === 'query')
  const baseQuery = Object.fromEntries(query.filter((p) => p.required).map((p) => [p.name, baselineOf(p.schema, ids, p.name)]))
  const baseBody = op.body ? baselineOf(op.body, ids) : undefined
  const json = (v: unknown) => (v === undefined ? undefined : JSON.stringify(v))
  const probes: Probe[] = [{ why: 'the baseline request', path, query: queryOf(baseQuery), token, body: json(baseBody) }]

  // Generated from the schemas: query values and bodies.
  const queryArb = fc.record(Object.fromEntries(query.map((p) => [p.name, arbitraryOf(p.schema, ids, p.name)])), { requiredKeys: query.filter((p) => p.required).map((p) => p.name) })
  const bodyArb = op.body ? arbitraryOf(op.body, ids) : fc.constant(undefined)
  const generated = fc.sample(fc.tuple(queryArb, bodyArb), { seed, numRuns: RUNS })
  generated.forEach(([q, b], i) => probes.push({ why: `generated #${i} ${JSON.stringify({ q, b }).slice(0, 300)}`, path, query: queryOf(q as Record<string, unknown>), token, body: json(b) }))

  // Hostile path parameters, one at a time.
  for (const name of pathParams(op.path)) {
    for (const value of HOSTILE_PATH_VALUES) {
      const raw = op.path.replace(/\{([^}]+)\}/g, (_, p: string) => (p === name ? value : encodeURIComponent(world.pathIds(op, org)[p])))
      probes.push({ why: `path ${name}=${value.slice(0, 40)}`, path: raw, query: queryOf(baseQuery), token, body: json(baseBody) })
    }
  }
  // Hostile query values, unknown and repeated parameters.
  for (const p of query) {
    for (const value of HOSTILE_QUERY_VALUES) probes.push({ why: `query ${p.name}=${value.slice(0, 40)}`, path, query: `${queryOf({ ...baseQuery, [p.name]: undefined }).replace(new RegExp(`(^|&)${p.name}=undefined`), '')}&${p.name}=${value}`, token, body: json(baseBody) })
    probes.push({ why: `query ${p.name} twice`, path, query: `${p.name}=1&${p.name}=2`, token, body: json(baseBody) })
  }
  probes.push({ why: 'an unknown query parameter', path, query: `${queryOf(baseQuery)}&unknownParam=%ED%A0%80`, token, body: json(baseBody) })

  // Hostile bodies, for every operation that reads one.
  if (op.method !== 'GET') {
    const fullBody = op.body ? baselineOf(op.body, ids, '', true) : {}
    probes.push({ why: 'every optional field', path, query: queryOf(baseQuery), token, body: json(fullBody) })
    for (const h of hostileBodies(fullBody, seed, 40)) probes.push({ why: `body: ${h.why}`, path, query: queryOf(baseQuery), token, body: h.body, contentType: h.contentType })
  }
  return probes
}

// Every route adds ~50 probes: past 50 operations the run outgrows tap's 180 s on a loaded 2-core box.
t.setTimeout(600_000)

t.test('every operation × generated and hostile input: documented 4xx or valid 2xx, never 5xx, never a hang, nothing committed by a refusal', async (t) => {
  const world = await buildWorld(t)
  const ops = [...world.ops.filter((o) => !destructive(o)), ...world.ops.filter(destructive)]
  t.ok(ops.length >= 36, `${ops.length} operations in /docs/json`)
  let cases = 0
  const seen: Record<number, number> = {}
  for (const [i, op] of ops.entries()) {
    const probes = probesOf(world, op, i)
    cases += probes.length
    const { problems, statuses } = await runProbes(world, op, probes)
    for (const [s, n] of Object.entries(statuses)) seen[Number(s)] = (seen[Number(s)] ?? 0) + n
    t.same(problems, [], `${op.key}: ${probes.length} probes, statuses ${JSON.stringify(statuses)}`)
  }
  t.comment(`seed ${SEED}, ${RUNS} generated cases per operation: ${cases} requests over ${ops.length} operations; statuses ${JSON.stringify(seen)}`)
})
