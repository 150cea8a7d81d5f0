/**
 * `checkOp`: the validation the server runs on an incoming op before it is
 * transformed and committed. It is apply itself plus the op size limit, so
 * the two can never disagree.
 */
import { applyOp } from './apply.js'
import { InvalidOpError, fail } from './errors.js'
import { readOp } from './op.js'
import { utf8Length } from './values.js'
import { DEFAULT_LIMITS, type TaskContent, type TaskLimits, type TaskOp } from './types.js'

/** Throws InvalidOpError when `op` serializes to more than `opBytesMax` bytes of JSON. */
export function checkOpSize(op: unknown, limits: TaskLimits): void {
  let json: string | undefined
  try {
    json = JSON.stringify(op)
  } catch {
    fail('op', 'is not serializable JSON') // cycles or BigInt from a JavaScript caller
  }
  const bytes = json === undefined ? 0 : utf8Length(json)
  if (bytes > limits.opBytesMax) fail('op', `is ${bytes} bytes of JSON, over the limit of ${limits.opBytesMax}`)
}

/**
 * Validates `op` against `content`: `null` when it applies, otherwise a
 * message naming the field and what is wrong (`tags: tag "x" is in both add
 * and remove`). Never throws on any input.
 */
export function checkOp(content: TaskContent, op: unknown, limits: TaskLimits = DEFAULT_LIMITS): string | null {
  try {
    validateOp(content, op, limits)
    return null
  } catch (e) {
    if (e instanceof InvalidOpError) return e.message
    throw e
  }
}

/** Like checkOp but throws InvalidOpError, and returns the canonical op. */
export function validateOp(content: TaskContent, op: unknown, limits: TaskLimits = DEFAULT_LIMITS): TaskOp {
  const canonical = readOp(op, limits)
  checkOpSize(op, limits)
  applyOp(content, canonical, limits)
  return canonical
}
