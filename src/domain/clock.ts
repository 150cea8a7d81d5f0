/**
 * Vector clocks: ops committed per device. Pure; every function returns a
 * new object and treats a missing device as 0.
 */

/** Device id → number of ops committed by that device. */
export type VectorClock = Record<string, number>

/** How two clocks are ordered: BEFORE means `a` happened before `b`. */
export type ClockOrder = 'EQUAL' | 'BEFORE' | 'AFTER' | 'CONCURRENT'

const get = (c: VectorClock, id: string): number => (Object.hasOwn(c, id) ? c[id] : 0)

// Object.fromEntries defines own properties, so a device id of "__proto__" stays a plain key.
const build = (entries: [string, number][]): VectorClock => Object.fromEntries(entries)

/** `clock` with `id` counted once more. */
export function increment(clock: VectorClock, id: string): VectorClock {
  return build([...Object.entries(clock).filter(([k]) => k !== id), [id, get(clock, id) + 1]])
}

/** The element-wise maximum of `a` and `b`. */
export function merge(a: VectorClock, b: VectorClock): VectorClock {
  const ids = new Set([...Object.keys(a), ...Object.keys(b)])
  return build([...ids].map((id) => [id, Math.max(get(a, id), get(b, id))]))
}

/** Whether `a` is equal to, before, after or concurrent with `b`. */
export function compare(a: VectorClock, b: VectorClock): ClockOrder {
  let less = false
  let greater = false
  for (const id of new Set([...Object.keys(a), ...Object.keys(b)])) {
    const x = get(a, id)
    const y = get(b, id)
    if (x < y) less = true
    else if (x > y) greater = true
  }
  if (less && greater) return 'CONCURRENT'
  return less ? 'BEFORE' : greater ? 'AFTER' : 'EQUAL'
}

/** True for a JSON value shaped like a clock: non-negative integer counts. */
export function isVectorClock(x: unknown): x is VectorClock {
  if (typeof x !== 'object' || x === null || Array.isArray(x)) return false
  return Object.values(x).every((n) => Number.isSafeInteger(n) && (n as number) >= 0)
}
