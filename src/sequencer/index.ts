export * from './types.js'
export { TaskSequencer } from './sequencer.js'
