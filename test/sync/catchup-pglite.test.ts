/**
 * A device's REST catch-up on the embedded default (PGlite): the pull, whose page
 * sends its independent statements together in one transaction, and the op log
 * pages served through op ranges, answer on a database that runs one statement
 * at a time exactly as on PostgreSQL.
 */
import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildApp } from '../../src/app.js'
import { loadConfig } from '../../src/config/index.js'
import { api, registerOwner } from '../helpers/app.js'

t.test('pull pages and op log pages on PGlite', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'tasksync-catchup-'))
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
  const app = await buildApp(loadConfig({ DATA_DIR: dataDir, LOG_LEVEL: 'silent', SCRYPT_LOG_N: '10' }))
  t.teardown(() => app.close())
  await app.listen({ host: '127.0.0.1', port: 0 })
  const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
  t.equal(app.database.kind, 'pglite')
  const owner = await registerOwner(url)
  const me = api(url, owner.accessToken)
  const ids: string[] = []
  for (let i = 0; i < 5; i++) ids.push((await me.post('/api/tasks', { title: `task ${i}` })).body.id)
  for (let i = 0; i < 6; i++) await me.patch(`/api/tasks/${ids[0]}`, { op: { title: ['x'] }, baseRev: 1 + i })
  await me.post(`/api/tasks/${ids[1]}/comments`, { body: 'hello' })

  const first = await me.get('/api/sync/pull?limit=2')
  t.equal(first.status, 200)
  t.same([first.body.tasks.length, first.body.hasMore], [2, true], 'a page of 2 tasks, more to come')
  const seen = new Set<string>(first.body.tasks.map((x: { id: string }) => x.id))
  let cursor = first.body.cursor
  let comments = 0
  for (let pages = 0; pages < 10; pages++) {
    const p = await me.get(`/api/sync/pull?limit=2&cursor=${cursor}`)
    t.equal(p.status, 200)
    for (const x of p.body.tasks) seen.add(x.id)
    comments += p.body.comments.length
    cursor = p.body.cursor
    if (!p.body.hasMore) break
  }
  t.same([...seen].sort(), [...ids].sort(), 'every task once')
  t.equal(comments, 1, 'and the comment after them')
  const after = await me.get(`/api/sync/pull?cursor=${cursor}`)
  t.same([after.body.tasks, after.body.comments, after.body.hasMore], [[], [], false], 'nothing new after the catch-up')

  const page1 = await me.get(`/api/tasks/${ids[0]}/ops?from=2&limit=4`)
  const page2 = await me.get(`/api/tasks/${ids[0]}/ops?from=6&limit=4`)
  t.same(page1.body.ops.map((o: { rev: number }) => o.rev), [2, 3, 4, 5])
  t.equal(page1.body.hasMore, true)
  t.same([page2.body.ops.map((o: { rev: number }) => o.rev), page2.body.hasMore], [[6, 7], false])
  const snap = await me.get(`/api/tasks/${ids[0]}`)
  t.equal(snap.body.title, 'xxxxxxtask 0', 'the ops replayed give the snapshot')
})
