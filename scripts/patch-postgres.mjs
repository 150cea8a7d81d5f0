#!/usr/bin/env node
/**
 * postinstall: guards postgres.js 3.4.x against a crash of the whole process.
 * A small write is flushed on the next turn (setImmediate); when the connection
 * closes in between, `nextWrite` runs with `socket === null` and throws a
 * TypeError no caller can catch ("Cannot read properties of null (reading
 * 'write')"), which takes the server down. The chaos checker hit it on every
 * long run (PostgreSQL restarted or its connections dropped). Upstream:
 * porsager/postgres#1066, #1154, #1208 (fixes proposed in #1168, #1176, #1209,
 * not released as of 3.4.10). The patch settles instead: the pending queries
 * get CONNECTION_CLOSED (storage `unavailable` for tasksync), the buffered
 * bytes of the dead socket are dropped, and the connection reconnects as usual.
 * Idempotent; does nothing (with a note) on a postgres.js it does not recognize.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const MARK = '/* tasksync: scripts/patch-postgres.mjs */'

const edits = [
  {
    from: '  function nextWrite(fn) {\n    const x = socket.write(chunk, fn)',
    to:
      `  function nextWrite(fn) {\n    ${MARK}\n    if (socket === null) {\n      nextWriteTimer !== null && clearImmediate(nextWriteTimer)\n` +
      `      chunk = nextWriteTimer = null\n      error(Errors.connection('CONNECTION_CLOSED', options))\n      return false\n    }\n    const x = socket.write(chunk, fn)`,
  },
  {
    // A closed socket's buffered bytes must neither be flushed onto the next socket nor block its first flush.
    from: '    incomings = null\n    clearImmediate(nextWriteTimer)\n',
    to: `    incomings = null\n    clearImmediate(nextWriteTimer)\n    chunk = nextWriteTimer = null ${MARK}\n`,
  },
  {
    // The array-type fetch after connecting is an async function whose promise nobody holds: when the
    // connection dies during it (PostgreSQL shutting down), its rejection is unhandled and the process
    // exits. Its failure needs no handling of its own: a dead connection retries the query that opened it
    // on reconnect (the close path), and after a server error ReadyForQuery runs that query anyway.
    from: '        return fetchArrayTypes()\n',
    to: `        return fetchArrayTypes().catch(() => {}) ${MARK}\n`,
  },
]

for (const file of ['src/connection.js', 'cjs/src/connection.js']) {
  const path = join(root, 'node_modules', 'postgres', file)
  if (!existsSync(path)) continue
  let text = readFileSync(path, 'utf8')
  // Each edit once: an install patched by an earlier version of this script gets the newer edits.
  const todo = edits.filter((e) => !text.includes(e.to))
  if (todo.length === 0) continue
  if (!todo.every((e) => text.includes(e.from))) {
    console.warn(`patch-postgres: ${file} is not the postgres.js this patch knows; left as it is`)
    continue
  }
  for (const e of todo) text = text.replace(e.from, e.to)
  writeFileSync(path, text)
}
