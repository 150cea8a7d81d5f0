/**
 * The one error the op type throws. It is a TaskSyncError with code
 * `invalid_op`, so transports map it to 422 without knowing the domain.
 */
import { TaskSyncError } from '../protocol/errors.js'

/** An op (or initial content, or patch) that cannot apply; `path` names the offending part. */
export class InvalidOpError extends TaskSyncError {
  /** Where the problem is, e.g. `title`, `tags.add[2]`, `customFields.estimate`. */
  readonly path: string
  constructor(path: string, problem: string) {
    super('invalid_op', `${path}: ${problem}`, { path })
    this.name = 'InvalidOpError'
    this.path = path
  }
}

/** Throws an InvalidOpError; typed `never` so callers can use it in expressions. */
export function fail(path: string, problem: string): never {
  throw new InvalidOpError(path, problem)
}
