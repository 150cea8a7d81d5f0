/**
 * The commit statement's parameter: a hot task's chain of revs carries the task's
 * snapshot once, at its last rev (the one `upd` writes), and every rev its own op,
 * history entry and record. What the chain writes is checked against PostgreSQL in
 * task-store-contract.ts ('a chain of one task's consecutive revs').
 */
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { PgDialect } from 'drizzle-orm/pg-core'
import { commitOpsStatement } from '../../src/storage/tasks-commit.js'
import { createRow, opRow } from './task-store-contract.js'

const records = (rows: Parameters<typeof commitOpsStatement>[0]): Record<string, unknown>[] =>
  JSON.parse(new PgDialect().sqlToQuery(commitOpsStatement(rows)).params[0] as string)

t.test('a chain sends the snapshot of its last rev only; a lone row and each task of a batch send theirs', async (t) => {
  const orgId = randomUUID()
  const a = createRow(orgId, randomUUID(), { title: 'a', customFields: { x: 1 } })
  const b = createRow(orgId, randomUUID(), { title: 'b' })
  const a2 = opRow(a, { title: [1, '1'] })
  const a3 = opRow(a2, { customFields: { y: { set: 2 } } })
  const a4 = opRow(a3, { status: { set: 'done' } })
  const b2 = opRow(b, { priority: { set: 3 } })
  const sent = records([a2, a3, a4, b2])
  t.same(sent.map((r) => r.rev), [2, 3, 4, 2], 'every row, in order')
  t.same(sent.map((r) => 'content' in r), [false, false, true, true], 'the snapshot at each task\'s last rev')
  t.same(sent[2], { ...sent[2], content: a4.content, clock: a4.clock, status: 'done', priority: 0, project_id: null, assignee_id: null, deleted: false })
  t.same(sent.map((r) => r.changes), [a2.changes, a3.changes, a4.changes, b2.changes], 'every rev its history entry')
  t.same(sent.map((r) => r.op), [a2.op, a3.op, a4.op, b2.op], 'and its op')
  t.same(records([a2])[0].content, a2.content, 'a lone row carries its snapshot')
})
