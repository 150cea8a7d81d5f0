/**
 * tasksync/client/node: the whole SDK plus `fileStorage`, which needs node:fs.
 * Kept out of the main entry so browser bundles never pull Node built-ins.
 */
export * from './index.js'
export { fileStorage } from './file-storage.js'
export { fileSource, reopenFile, nodeSha256 } from './node-files.js'
