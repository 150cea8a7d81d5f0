/**
 * The dependency rules of src/, checked over the imports of every file (type-only
 * imports included: they couple modules as much as the others). Run by
 * test/architecture.test.ts in `npm test`; `npx tsx scripts/architecture.ts` prints
 * the violations and exits 1 when there is one.
 *
 * - domain imports nothing of the project and no Node built-in;
 * - protocol imports only domain (and no Node built-in); client only protocol and domain;
 * - only storage/ imports drizzle or a database driver;
 * - only src/app.ts, plugin files and http/ import fastify;
 * - the sequencer sees storage only through its port (storage/task-store.ts) and error classifier;
 * - no import cycle in src/.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'

/** One file's imports: project files (paths relative to src/) and packages. */
export interface FileImports {
  files: string[]
  packages: string[]
}

export type ImportGraph = Map<string, FileImports>

const DATABASE_PACKAGES = /^(drizzle-orm|drizzle-kit|postgres|@electric-sql\/pglite)(\/|$)/
const FASTIFY_PACKAGES = /^(fastify|fastify-plugin|@fastify\/[^/]+)(\/|$)/

/** Reads the imports of every .ts file under `srcDir`. */
export function readImportGraph(srcDir: string): ImportGraph {
  const graph: ImportGraph = new Map()
  for (const abs of walk(srcDir)) {
    const info = ts.preProcessFile(readFileSync(abs, 'utf8'), true, true)
    const files: string[] = []
    const packages: string[] = []
    for (const { fileName } of info.importedFiles) {
      if (fileName.startsWith('.')) files.push(relative(srcDir, resolveTs(resolve(dirname(abs), fileName))))
      else packages.push(fileName)
    }
    graph.set(relative(srcDir, abs), { files, packages })
  }
  return graph
}

function* walk(dir: string): Generator<string> {
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) yield* walk(path)
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) yield path
  }
}

/** `./x.js` names the source `./x.ts` (NodeNext resolution). */
const resolveTs = (path: string): string => path.replace(/\.js$/, '.ts')

const moduleOf = (file: string): string => (file.includes('/') ? file.slice(0, file.indexOf('/')) : file)

/** Every violation of the rules, one line each (empty when the tree keeps them). */
export function violations(graph: ImportGraph): string[] {
  const out: string[] = []
  for (const [file, { files, packages }] of graph) {
    const mod = moduleOf(file)
    const allowed: Record<string, string[] | undefined> = { domain: ['domain'], protocol: ['protocol', 'domain'], client: ['client', 'protocol', 'domain'] }
    const may = allowed[mod]
    for (const dep of files) {
      if (may && !may.includes(moduleOf(dep))) out.push(`${file} imports ${dep}: ${mod} may import only ${may.join(', ')}`)
      if (mod === 'sequencer' && moduleOf(dep) === 'storage' && dep !== 'storage/task-store.ts' && dep !== 'storage/errors.ts') {
        out.push(`${file} imports ${dep}: the sequencer sees storage only through storage/task-store.ts`)
      }
    }
    for (const pkg of packages) {
      if ((mod === 'domain' || mod === 'protocol') && (pkg.startsWith('node:') || NODE_BUILTINS.has(pkg))) out.push(`${file} imports ${pkg}: ${mod} runs in browsers`)
      if (DATABASE_PACKAGES.test(pkg) && mod !== 'storage') out.push(`${file} imports ${pkg}: only storage/ speaks to the database`)
      if (FASTIFY_PACKAGES.test(pkg) && !(file === 'app.ts' || file.endsWith('/plugin.ts') || mod === 'http')) {
        out.push(`${file} imports ${pkg}: only app.ts, plugin files and http/ know fastify`)
      }
    }
  }
  for (const { files, example } of cycles(graph)) {
    out.push(`import cycle among ${files.length} file(s) (${files.join(', ')}), e.g. ${example.join(' → ')}`)
  }
  return out
}

const NODE_BUILTINS = new Set(['fs', 'path', 'crypto', 'http', 'net', 'os', 'stream', 'url', 'util', 'events', 'buffer', 'child_process', 'worker_threads'])

/** Each strongly connected component with more than one file (or a file importing itself), with one cycle through it. */
export function cycles(graph: ImportGraph): { files: string[]; example: string[] }[] {
  // Tarjan's algorithm, iterative enough for a source tree.
  let index = 0
  const indices = new Map<string, number>()
  const low = new Map<string, number>()
  const stack: string[] = []
  const onStack = new Set<string>()
  const found: { files: string[]; example: string[] }[] = []
  const edges = (f: string) => (graph.get(f)?.files ?? []).filter((d) => graph.has(d))
  const connect = (v: string): void => {
    indices.set(v, index)
    low.set(v, index++)
    stack.push(v)
    onStack.add(v)
    for (const w of edges(v)) {
      if (!indices.has(w)) {
        connect(w)
        low.set(v, Math.min(low.get(v)!, low.get(w)!))
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, indices.get(w)!))
    }
    if (low.get(v) !== indices.get(v)) return
    const component: string[] = []
    for (let w = stack.pop()!; ; w = stack.pop()!) {
      onStack.delete(w)
      component.push(w)
      if (w === v) break
    }
    if (component.length > 1 || edges(v).includes(v)) found.push({ files: component.sort(), example: pathThrough(component, edges) })
  }
  for (const v of graph.keys()) if (!indices.has(v)) connect(v)
  return found
}

/** A readable cycle inside one component: from its first file back to it. */
function pathThrough(component: string[], edges: (f: string) => string[]): string[] {
  const inside = new Set(component)
  const start = [...component].sort()[0]
  const prev = new Map<string, string>()
  const queue = [start]
  while (queue.length) {
    const v = queue.shift()!
    for (const w of edges(v)) {
      if (!inside.has(w)) continue
      if (w === start) {
        const path = [start]
        for (let x = v; x !== start; x = prev.get(x)!) path.splice(1, 0, x)
        return [...path, start]
      }
      if (!prev.has(w)) {
        prev.set(w, v)
        queue.push(w)
      }
    }
  }
  return [...component, component[0]]
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const src = join(dirname(fileURLToPath(import.meta.url)), '..', 'src')
  const found = violations(readImportGraph(src))
  for (const line of found) console.log(line)
  console.log(found.length === 0 ? 'architecture: every rule holds' : `architecture: ${found.length} violation(s)`)
  process.exitCode = found.length === 0 ? 0 : 1
}
