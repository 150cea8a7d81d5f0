/**
 * Dependencies point inward (README, Architecture): the rules of
 * scripts/architecture.ts hold over every import of src/, and the checker does
 * find each kind of violation.
 */
import t from 'tap'
import { join } from 'node:path'
import { cycles, readImportGraph, violations, type ImportGraph } from '../scripts/architecture.js'

const src = join(import.meta.dirname, '..', 'src')

t.test('src/ keeps every dependency rule', async (t) => {
  const graph = readImportGraph(src)
  t.ok(graph.size > 100, `read the imports of ${graph.size} files`)
  t.ok(graph.get('sequencer/sequencer.ts')?.files.includes('storage/task-store.ts'), 'imports are resolved to files')
  t.same(violations(graph), [])
})

const graphOf = (edges: Record<string, string[]>): ImportGraph =>
  new Map(
    Object.entries(edges).map(([file, deps]) => [
      file,
      { files: deps.filter((d) => d.endsWith('.ts')), packages: deps.filter((d) => !d.endsWith('.ts')) },
    ]),
  )

t.test('each kind of violation is reported', async (t) => {
  const found = violations(
    graphOf({
      'domain/op.ts': ['protocol/errors.ts', 'node:crypto'],
      'protocol/errors.ts': ['domain/op.ts'],
      'client/task.ts': ['ws/wire.ts'],
      'ws/wire.ts': ['drizzle-orm', 'fastify'],
      'http/tasks.ts': ['fastify', '@fastify/type-provider-typebox'],
      'ws/plugin.ts': ['fastify-plugin', '@fastify/websocket'],
      'storage/tasks.ts': ['drizzle-orm'],
      'sequencer/sequencer.ts': ['storage/tasks.ts', 'storage/task-store.ts', 'storage/errors.ts'],
      'storage/task-store.ts': [],
      'storage/errors.ts': [],
    }),
  )
  t.match(found, [
    /^domain\/op\.ts imports protocol\/errors\.ts: domain may import only domain/,
    /^domain\/op\.ts imports node:crypto: domain runs in browsers/,
    /^client\/task\.ts imports ws\/wire\.ts: client may import only client, protocol, domain/,
    /^ws\/wire\.ts imports drizzle-orm: only storage\/ speaks to the database/,
    /^ws\/wire\.ts imports fastify: only app\.ts, plugin files and http\/ know fastify/,
    /^sequencer\/sequencer\.ts imports storage\/tasks\.ts: the sequencer sees storage only through/,
    /^import cycle among 2 file\(s\) \(domain\/op\.ts, protocol\/errors\.ts\)/,
  ])
  t.equal(found.length, 7, 'and nothing else: http/, plugin files and storage/ may import what they import')
})

t.test('cycles: one per knot, with a path through it', async (t) => {
  const knots = cycles(graphOf({ 'a.ts': ['b.ts'], 'b.ts': ['c.ts'], 'c.ts': ['a.ts', 'd.ts'], 'd.ts': [], 'e.ts': ['e.ts'] }))
  t.same(knots, [
    { files: ['a.ts', 'b.ts', 'c.ts'], example: ['a.ts', 'b.ts', 'c.ts', 'a.ts'] },
    { files: ['e.ts'], example: ['e.ts', 'e.ts'] },
  ])
})
