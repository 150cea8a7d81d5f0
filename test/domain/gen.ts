/**
 * fast-check arbitraries for the op type's property tests: random task
 * content and random ops valid on a given content.
 */
import fc from 'fast-check'
import { type as otText } from 'ot-text-unicode'
import { STATUSES, type JsonValue, type TaskContent, type TaskOp, type TextOp } from '../../src/domain/index.js'

/** Characters that stress code point counting: accents, combining marks, astral plane. */
export const CHARS = ['a', 'b', ' ', 'é', 'e\u0301', '😀', '𝒳', '中', '\n', '👩‍💻']
export const TAGS = ['a', 'B', 'b', 'ä', 'z', '🏷', 'tag-1', 'x y']
export const KEYS = ['estimate', 'risk', 'ü', 'k😀', 'constructor']
export const UUIDS = ['0b6f3c4e-8a7d-4f8e-9c3a-1d2e3f4a5b6c', '9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d', '11111111-2222-4333-8444-555555555555']

export const text = fc.array(fc.constantFrom(...CHARS), { maxLength: 10 }).map((a) => a.join(''))
const instant = fc.integer({ min: Date.UTC(2000, 0, 1), max: Date.UTC(2040, 0, 1) })
export const jsonValue: fc.Arbitrary<JsonValue> = fc.oneof(
  fc.integer({ min: -1000, max: 1000 }),
  fc.boolean(),
  fc.constant(null),
  text,
  fc.array(fc.integer({ min: 0, max: 9 }), { maxLength: 3 }),
  fc.record({ n: fc.integer({ min: 0, max: 9 }), s: text }, { noNullPrototype: true }),
)

export const content: fc.Arbitrary<TaskContent> = fc.record({
  title: text,
  description: text,
  status: fc.constantFrom(...STATUSES),
  priority: fc.integer({ min: 0, max: 4 }),
  tags: fc.subarray(TAGS).map((t) => [...t].sort()),
  assigneeId: fc.option(fc.constantFrom(...UUIDS), { nil: null }),
  dueAt: fc.option(instant.map((ms) => new Date(ms).toISOString()), { nil: null }),
  projectId: fc.option(fc.constantFrom(...UUIDS), { nil: null }),
  customFields: fc.dictionary(fc.constantFrom(...KEYS), jsonValue, { maxKeys: 4, noNullPrototype: true }),
  deleted: fc.constant(false),
}, { noNullPrototype: true })

/** An instant written with an arbitrary offset, e.g. 2031-05-02T01:30:00.250+05:30. */
export function withOffset(ms: number, offsetMin: number): string {
  const local = new Date(ms + offsetMin * 60_000).toISOString().slice(0, 23)
  if (offsetMin === 0) return local + 'Z'
  const a = Math.abs(offsetMin)
  return `${local}${offsetMin < 0 ? '-' : '+'}${String(Math.floor(a / 60)).padStart(2, '0')}:${String(a % 60).padStart(2, '0')}`
}

const some = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined, freq: 2 })
const rawText = fc.array(fc.record({ pos: fc.nat(), del: fc.nat({ max: 4 }), ins: text }), { minLength: 1, maxLength: 3 })

/** Content-independent random choices, turned into a valid op by buildOp. */
export const rawOp = fc.record({
  title: some(rawText),
  description: some(rawText),
  status: some(fc.constantFrom(...STATUSES)),
  priority: some(fc.integer({ min: 0, max: 4 })),
  tags: some(fc.record({ add: fc.array(fc.constantFrom(...TAGS), { maxLength: 3 }), remove: fc.subarray(TAGS, { maxLength: 3 }) })),
  assigneeId: some(fc.option(fc.constantFrom(...UUIDS.map((u) => u.toUpperCase()), ...UUIDS), { nil: null })),
  dueAt: some(fc.option(fc.tuple(instant, fc.integer({ min: -14 * 60, max: 14 * 60 })), { nil: null })),
  projectId: some(fc.option(fc.constantFrom(...UUIDS), { nil: null })),
  customFields: some(
    fc.dictionary(fc.constantFrom(...KEYS), fc.oneof(jsonValue.map((v) => ({ set: v })), fc.constant({ unset: true as const })), {
      maxKeys: 3,
      noNullPrototype: true,
    }),
  ),
  delete: fc.oneof({ arbitrary: fc.constant(undefined), weight: 15 }, { arbitrary: fc.constant(true as const), weight: 1 }),
}, { noNullPrototype: true })
export type RawOp = typeof rawOp extends fc.Arbitrary<infer R> ? R : never

/** A text op made of a few random edits of `s` (composed), or undefined. */
export function buildText(s: string, edits: { pos: number; del: number; ins: string }[]): TextOp | undefined {
  let op: TextOp = []
  for (const e of edits) {
    const len = [...s].length
    const pos = e.pos % (len + 1)
    const del = Math.min(e.del, len - pos)
    const step = otText.normalize([pos, { d: del }, e.ins] as never) as TextOp
    op = otText.compose(op as never, step as never) as TextOp
    s = otText.apply(s, step as never)
  }
  return op.length > 0 ? op : undefined
}

/** The op `raw` describes, valid on `s` (not normalized: tag lists may be unsorted or repeat). */
export function buildOp(s: TaskContent, raw: RawOp): TaskOp {
  const op: Record<string, unknown> = {}
  if (raw.title) op.title = buildText(s.title, raw.title)
  if (raw.description) op.description = buildText(s.description, raw.description)
  if (raw.status) op.status = { set: raw.status }
  if (raw.priority !== undefined) op.priority = { set: raw.priority }
  if (raw.tags) {
    const remove = raw.tags.remove.filter((t) => !raw.tags!.add.includes(t))
    if (raw.tags.add.length + remove.length > 0) op.tags = { add: raw.tags.add, remove }
  }
  if (raw.assigneeId !== undefined) op.assigneeId = { set: raw.assigneeId }
  if (raw.dueAt !== undefined) op.dueAt = { set: raw.dueAt && withOffset(raw.dueAt[0], raw.dueAt[1]) }
  if (raw.projectId !== undefined) op.projectId = { set: raw.projectId }
  if (raw.customFields) op.customFields = raw.customFields
  if (raw.delete) op.delete = true
  for (const k of Object.keys(op)) if (op[k] === undefined) delete op[k]
  return op as TaskOp
}

/** Freezes a JSON value all the way down, so any mutation throws. */
export function deepFreeze<T>(x: T): T {
  if (typeof x === 'object' && x !== null) {
    for (const v of Object.values(x)) deepFreeze(v)
    Object.freeze(x)
  }
  return x
}
