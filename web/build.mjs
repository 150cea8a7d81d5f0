#!/usr/bin/env node
/**
 * Builds the web app into dist/web with esbuild: one hashed script and
 * stylesheet under assets/ (each with .gz and .br beside it, served as they
 * are), index.html naming them, and the service worker with the list of files
 * it keeps for offline use. The SDK is bundled from src/ (tasksync/client,
 * tasksync/react). `node web/build.mjs` or `npm run build`.
 */
import { build } from 'esbuild'
import { createHash } from 'node:crypto'
import { mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync, copyFileSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { brotliCompressSync, gzipSync, constants } from 'node:zlib'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const web = join(root, 'web')

export const alias = {
  'tasksync/client': join(root, 'src/client/index.ts'),
  'tasksync/react': join(root, 'src/react/index.ts'),
}

/** Builds into `out` (default dist/web), replacing what was there; returns the sizes of what it wrote. */
export async function buildWeb(out = join(root, 'dist', 'web')) {
  const tmp = `${out}.tmp-${process.pid}-${Date.now()}`
  rmSync(tmp, { recursive: true, force: true })
  const assets = join(tmp, 'assets')
  mkdirSync(assets, { recursive: true })
  const app = await build({
    entryPoints: { app: join(web, 'src/main.tsx') },
    bundle: true,
    // WEB_MINIFY=0 keeps names readable in a profile.
    minify: process.env.WEB_MINIFY !== '0',
    format: 'esm',
    target: ['chrome110', 'firefox110', 'safari16'],
    platform: 'browser',
    jsx: 'automatic',
    alias,
    define: { 'process.env.NODE_ENV': '"production"' },
    entryNames: '[name]-[hash]',
    assetNames: '[name]-[hash]',
    outdir: assets,
    metafile: true,
    legalComments: 'none',
    logLevel: 'warning',
  })
  const files = Object.keys(app.metafile.outputs).map((f) => relative(tmp, join(root, f)).split('\\').join('/'))
  const script = files.find((f) => f.endsWith('.js'))
  const style = files.find((f) => f.endsWith('.css'))
  const html = readFileSync(join(web, 'index.html'), 'utf8')
    .replace('<!--style-->', style ? `<link rel="stylesheet" href="/${style}">` : '')
    .replace('<!--script-->', `<script type="module" src="/${script}"></script>`)
  writeFileSync(join(tmp, 'index.html'), html)
  for (const f of readdirSync(join(web, 'public'))) copyFileSync(join(web, 'public', f), join(tmp, f))

  // The service worker keeps the app shell: index.html, the assets, the icon.
  const shell = ['/', ...files.map((f) => `/${f}`), '/favicon.svg', '/manifest.webmanifest']
  const version = createHash('sha256').update(shell.join('\n') + html).digest('hex').slice(0, 12)
  await build({
    entryPoints: [join(web, 'src/sw.ts')],
    bundle: true,
    minify: true,
    format: 'iife',
    target: ['chrome110'],
    define: { __SHELL__: JSON.stringify(shell), __VERSION__: JSON.stringify(version) },
    outfile: join(tmp, 'sw.js'),
    logLevel: 'warning',
  })

  const sizes = {}
  for (const f of readdirSync(assets)) {
    const path = join(assets, f)
    const body = readFileSync(path)
    const gz = gzipSync(body, { level: 9 })
    writeFileSync(`${path}.gz`, gz)
    writeFileSync(`${path}.br`, brotliCompressSync(body, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }))
    sizes[`assets/${f}`] = { bytes: body.length, gzip: gz.length }
  }
  const sw = readFileSync(join(tmp, 'sw.js'))
  sizes['sw.js'] = { bytes: sw.length, gzip: gzipSync(sw, { level: 9 }).length }
  writeFileSync(join(tmp, 'build.json'), JSON.stringify({ version, shell, sizes }, null, 2) + '\n')

  // Swap in whole: a server reading dist/web never sees half a build.
  const old = `${out}.old-${process.pid}-${Date.now()}`
  mkdirSync(dirname(out), { recursive: true })
  try {
    renameSync(out, old)
  } catch {
    // No previous build.
  }
  renameSync(tmp, out)
  rmSync(old, { recursive: true, force: true })
  return { version, sizes }
}

/** The newest modification time of the web app's sources (web/ and the SDK it bundles). */
export function newestSource() {
  let max = 0
  const walk = (p) => {
    const st = statSync(p)
    if (st.isDirectory()) for (const n of readdirSync(p)) walk(join(p, n))
    else max = Math.max(max, st.mtimeMs)
  }
  for (const p of ['web/src', 'web/public', 'web/index.html', 'web/build.mjs', 'src/client', 'src/react', 'src/domain', 'src/protocol']) walk(join(root, p))
  return max
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { sizes } = await buildWeb(process.argv[2])
  const js = Object.entries(sizes).filter(([f]) => f.endsWith('.js'))
  const total = js.reduce((n, [, s]) => n + s.gzip, 0)
  for (const [f, s] of Object.entries(sizes)) process.stdout.write(`  ${f.padEnd(34)} ${(s.bytes / 1024).toFixed(1).padStart(7)} KB  ${(s.gzip / 1024).toFixed(1).padStart(6)} KB gzip\n`)
  process.stdout.write(`web app built into dist/web: JavaScript ${(total / 1024).toFixed(1)} KB gzipped in total (service worker included)\n`)
}
