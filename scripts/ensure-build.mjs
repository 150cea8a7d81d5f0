#!/usr/bin/env node
/**
 * `npm start` runs this first: compiles src/ to dist/ with tsc when dist is
 * missing or older than any source file (or tsconfig/package.json), and the web
 * app into dist/web when web/ or the SDK changed, so a fresh clone needs only
 * `npm install && npm start`.
 */
import { existsSync, readdirSync, rmSync, statSync } from 'node:fs'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { spawnSync } from 'node:child_process'
import { createRequire } from 'node:module'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const entry = join(root, 'dist', 'src', 'server.js')

/** Newest modification time under a path (files ending in .ts, or the file itself). */
function newest(path) {
  const st = statSync(path)
  if (!st.isDirectory()) return st.mtimeMs
  let max = 0
  for (const name of readdirSync(path)) {
    const child = join(path, name)
    const cst = statSync(child)
    if (cst.isDirectory()) max = Math.max(max, newest(child))
    else if (name.endsWith('.ts')) max = Math.max(max, cst.mtimeMs)
  }
  return max
}

const inputs = ['src', 'tsconfig.json', 'tsconfig.build.json', 'package.json'].map((p) => join(root, p)).filter(existsSync)
const sourceTime = Math.max(...inputs.map(newest))
// tsc rewrites every output on each build, so the entry's time is the build's time.
const fresh = existsSync(entry) && statSync(entry).mtimeMs >= sourceTime

if (!fresh) {
  process.stderr.write('tasksync: building dist/ (sources changed or no build yet)…\n')
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc')
  const result = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { cwd: root, stdio: 'inherit' })
  if (result.status !== 0) {
    // tsc emits even on type errors: drop the entry so a failed build never counts as fresh.
    rmSync(entry, { force: true })
    process.stderr.write('tasksync: build failed (see the errors above)\n')
    process.exit(result.status ?? 1)
  }
}

// The web app (dist/web): rebuilt when web/ or the SDK it bundles changed.
const webIndex = join(root, 'dist', 'web', 'index.html')
const { buildWeb, newestSource } = await import('../web/build.mjs')
if (!existsSync(webIndex) || statSync(webIndex).mtimeMs < newestSource()) {
  process.stderr.write('tasksync: building the web app into dist/web…\n')
  try {
    await buildWeb()
  } catch (err) {
    process.stderr.write(`tasksync: web app build failed: ${err.message}\n`)
    process.exit(1)
  }
}
