/**
 * Micro-benchmark of the op type: transform + apply per second for typical
 * concurrent pairs, the work the server does per incoming op that has to be
 * rebased over one committed op. Run: npx tsx load/ot-bench.ts [seconds per case]
 */
import { taskType as T, type TaskContent, type TaskOp } from '../src/domain/index.js'

const base: TaskContent = {
  ...T.create(),
  title: 'Ship the offline sync for mobile 📱',
  description: 'Clients queue ops while offline and push them on reconnect. '.repeat(40),
  status: 'in_progress',
  priority: 2,
  tags: ['backend', 'mobile', 'sync'],
  customFields: { estimate: 5, risk: 'medium' },
}

interface Case {
  name: string
  incoming: TaskOp
  committed: TaskOp
}

const cases: Case[] = [
  { name: 'title insert vs title insert', incoming: { title: [9, 'new '] }, committed: { title: [4, ' now'] } },
  { name: 'status set vs priority set', incoming: { status: { set: 'in_review' } }, committed: { priority: { set: 3 } } },
  { name: 'tags add vs tags remove', incoming: { tags: { add: ['urgent', 'sync'] } }, committed: { tags: { remove: ['sync'] } } },
  {
    name: 'mixed (description edit, status, tags, custom field)',
    incoming: { description: [120, 'Retry with backoff. '], status: { set: 'done' }, customFields: { estimate: { set: 8 } } },
    committed: { description: [40, { d: 10 }], tags: { add: ['reviewed'] }, customFields: { risk: { set: 'low' } }, assigneeId: { set: '0b6f3c4e-8a7d-4f8e-9c3a-1d2e3f4a5b6c' } },
  },
]

const seconds = Number(process.argv[2] ?? 1)

function run(c: Case): number {
  const afterCommitted = T.apply(base, c.committed)
  let n = 0
  const start = performance.now()
  const until = start + seconds * 1000
  while (performance.now() < until) {
    for (let i = 0; i < 200; i++) T.apply(afterCommitted, T.transform(c.incoming, c.committed, 'left'))
    n += 200
  }
  return n / ((performance.now() - start) / 1000)
}

for (const c of cases) run(c) // warm up the JIT
console.log(`transform + apply, ${seconds}s per case (node ${process.version})`)
for (const c of cases) console.log(`${c.name.padEnd(56)} ${Math.round(run(c)).toLocaleString('en-US').padStart(10)} ops/s`)
