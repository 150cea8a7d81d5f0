/**
 * ot-fuzzer against the task type: random op sets on three replicas, checked
 * for apply, compose, the diamond of composed ops and pairwise list transform.
 * Expected snapshots come from a reference model here, never from type.apply.
 */
import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DEFAULT_LIMITS, STATUSES, makeTaskType, type TaskContent, type TaskOp } from '../../src/domain/index.js'
import { KEYS, TAGS, UUIDS, withOffset } from './gen.js'

type Gen = (s: TaskContent) => [TaskOp, TaskContent]
interface Fuzzer {
  (type: object, gen: Gen, iterations: number): void
  randomInt(n: number): number
  randomReal(): number
  randomWord(): string
}

// Text limits out of the way: concurrent growth past a limit is rejected by design, not a bug.
const type = makeTaskType({ ...DEFAULT_LIMITS, titleMax: 1e6, descriptionMax: 1e6 })
const EXTRA = ['😀', 'é', 'e\u0301', '𝒳', '中', ' ']

function makeGenerator(fz: Fuzzer, deleteChance: number): Gen {
  const pick = <T>(xs: readonly T[]): T => xs[fz.randomInt(xs.length)]
  const chance = (p: number) => fz.randomReal() < p

  /** A random edit of `s` as [op, result], computed on code point arrays. */
  const textEdit = (s: string): [TaskOp['title'], string] => {
    const cps = [...s]
    const pos = fz.randomInt(cps.length + 1)
    if (pos < cps.length && (cps.length > 40 || chance(0.4))) {
      const d = 1 + fz.randomInt(Math.min(cps.length - pos, 6))
      return [pos > 0 ? [pos, { d }] : [{ d }], [...cps.slice(0, pos), ...cps.slice(pos + d)].join('')]
    }
    const word = fz.randomWord() + pick(EXTRA)
    return [pos > 0 ? [pos, word] : [word], [...cps.slice(0, pos), word, ...cps.slice(pos)].join('')]
  }

  return (s) => {
    const op: TaskOp = {}
    const next: TaskContent = { ...s, tags: [...s.tags], customFields: { ...s.customFields } }
    if (chance(0.4)) [op.title, next.title] = textEdit(s.title)
    if (chance(0.3)) [op.description, next.description] = textEdit(s.description)
    if (chance(0.2)) next.status = (op.status = { set: pick(STATUSES) }).set
    if (chance(0.2)) next.priority = (op.priority = { set: fz.randomInt(5) }).set
    if (chance(0.3)) {
      const add = TAGS.filter(() => chance(0.2))
      const remove = TAGS.filter((t) => !add.includes(t) && chance(0.2))
      if (add.length + remove.length > 0) {
        op.tags = { add, remove }
        next.tags = [...new Set([...s.tags, ...add])].filter((t) => !remove.includes(t)).sort()
      }
    }
    if (chance(0.15)) next.assigneeId = (op.assigneeId = { set: chance(0.2) ? null : pick(UUIDS) }).set
    if (chance(0.15)) next.projectId = (op.projectId = { set: chance(0.2) ? null : pick(UUIDS) }).set
    if (chance(0.15)) {
      const ms = Date.UTC(2026, 0, 1) + fz.randomInt(1e10)
      op.dueAt = { set: withOffset(ms, fz.randomInt(28 * 60) - 14 * 60) }
      next.dueAt = new Date(ms).toISOString()
    }
    if (chance(0.25)) {
      op.customFields = {}
      for (const key of KEYS.filter(() => chance(0.3))) {
        if (chance(0.3)) {
          op.customFields[key] = { unset: true }
          delete next.customFields[key]
        } else {
          const value = chance(0.5) ? fz.randomInt(100) : { word: fz.randomWord() }
          op.customFields[key] = { set: value }
          next.customFields[key] = value
        }
      }
    }
    if (chance(deleteChance)) op.delete = true
    for (const k of Object.keys(op) as (keyof TaskOp)[]) if (Array.isArray(op[k]) && (op[k] as unknown[]).length === 0) delete op[k]
    if (s.deleted) return [op, s]
    if (op.delete) return [op, { ...type.create(), deleted: true }]
    return [op, next]
  }
}

t.test('ot-fuzzer finds no divergence', async (t) => {
  const cwd = process.cwd()
  const dir = mkdtempSync(join(tmpdir(), 'tasksync-fuzz-'))
  const saved = { SEED: process.env.SEED, SYNCFILE: process.env.SYNCFILE }
  const log = console.log
  const lines: string[] = []
  process.env.SEED = '42'
  delete process.env.SYNCFILE
  process.chdir(dir) // the fuzzer reads and writes its crash file in the working directory
  console.log = (...args: unknown[]) => void lines.push(args.join(' '))
  t.teardown(() => {
    console.log = log
    process.chdir(cwd)
    rmSync(dir, { recursive: true, force: true })
    for (const [k, v] of Object.entries(saved)) if (v === undefined) delete process.env[k]
    else process.env[k] = v
  })
  const fuzzer = createRequire(import.meta.url)('ot-fuzzer') as Fuzzer
  // A copy: the fuzzer wraps the type's functions to count calls.
  t.doesNotThrow(() => fuzzer({ ...type }, makeGenerator(fuzzer, 0), 600), 'without deletes')
  // Once a delete lands every later op is a no-op, so deletes get a short run of their own.
  t.doesNotThrow(() => fuzzer({ ...type }, makeGenerator(fuzzer, 0.03), 200), 'with deletes')
  const transforms = lines.filter((l) => /transforms: \d+/.test(l)).map((l) => Number(/(\d+)/.exec(l)![1]))
  t.equal(transforms.length, 2, 'both runs finished')
  t.ok(transforms.every((n) => n > 1000), `transforms performed: ${transforms.join(', ')}`)
})
