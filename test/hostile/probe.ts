/**
 * One probe of a generated suite: build the request of an operation, send it,
 * and say what is wrong with the answer (a 5xx, a hang, an undocumented status
 * or shape, or a refusal that committed something).
 */
import { send, undocumented, type Answer, type Operation } from '../helpers/openapi.js'
import type { World } from './world.js'

export interface Probe {
  why: string
  /** Path with its parameters filled (already encoded). */
  path: string
  /** Encoded query string without `?`, or ''. */
  query?: string
  token?: string
  body?: string | Buffer
  contentType?: string
  /** Extra headers (a raw Authorization, for instance). */
  headers?: Record<string, string>
}

/** `{a: 1, b: 'x'}` → `a=1&b=x` (arrays repeat the key). */
export function queryOf(values: Record<string, unknown>): string {
  return Object.entries(values)
    .flatMap(([k, v]) => (Array.isArray(v) ? v : [v]).map((x) => `${encodeURIComponent(k)}=${encodeURIComponent(String(x))}`))
    .join('&')
}

/** Sends a probe; a hang becomes an answer with status 0 so the caller reports it. */
export async function fire(world: World, op: Operation, p: Probe): Promise<Answer> {
  try {
    return await send(world.url, op.method, p.path + (p.query ? `?${p.query}` : ''), {
      token: p.token,
      body: p.body,
      headers: { ...(p.body !== undefined ? { 'content-type': p.contentType ?? 'application/json' } : {}), ...p.headers },
      timeoutMs: 15_000,
    })
  } catch (err) {
    return { status: 0, body: null, text: (err as Error).message }
  }
}

/**
 * Sends probes of one operation in order and returns the list of problems.
 * A 4xx must leave the database as it was (the digest is taken again after
 * every 2xx, which may commit).
 */
export async function runProbes(world: World, op: Operation, probes: Probe[]): Promise<{ problems: string[]; statuses: Record<number, number> }> {
  const problems: string[] = []
  const statuses: Record<number, number> = {}
  let digest = await world.fingerprint()
  for (const p of probes) {
    const answer = await fire(world, op, p)
    statuses[answer.status] = (statuses[answer.status] ?? 0) + 1
    const where = `${op.key} — ${p.why}`
    if (answer.status === 0) {
      problems.push(`${where}: no answer (${answer.text})`)
      continue
    }
    if (answer.status >= 500) problems.push(`${where}: ${answer.status} ${answer.text.slice(0, 200)}`)
    const wrong = undocumented(op, answer)
    if (wrong) problems.push(`${where}: ${wrong}`)
    if (answer.status >= 400) {
      const after = await world.fingerprint()
      if (after !== digest) problems.push(`${where}: refused with ${answer.status} but the database changed`)
      digest = after
    } else {
      digest = await world.fingerprint()
    }
  }
  return { problems, statuses }
}
