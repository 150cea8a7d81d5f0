export * from './types.js'
export { TaskSequencer } from './sequencer.js'
export { CommentService, type CommentServiceOptions } from './comments.js'
