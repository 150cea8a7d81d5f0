/**
 * The task op type and the pure rules around it: the package export
 * `tasksync/ot`. No I/O, no clock reads, no Node built-ins: it runs in browsers.
 */
export * from './types.js'
export { InvalidOpError } from './errors.js'
export { taskType, makeTaskType, type TaskType } from './task-type.js'
export { checkOp, validateOp, checkOpSize } from './check.js'
export { contentFromInit, creationOp } from './init.js'
export { opFromPatch, historyChanges } from './patch.js'
export { textDiff, textEdit } from './text.js'
export { invertOp, invertText, transformUndo } from './undo.js'
export { replayOps, type LoggedOp, type ReplayStart } from './replay.js'
export { increment, merge, compare, isVectorClock, type VectorClock, type ClockOrder } from './clock.js'
export { detectConflicts } from './transform.js'
export { isIdentity } from './op.js'
