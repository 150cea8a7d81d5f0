export * from './requests.js'
export { TaskSequencer, type SequencerOptions } from './sequencer.js'
