/**
 * Time travel through the real app on PostgreSQL: GET /api/tasks/:id?rev=N for
 * every rev of a random history equals the snapshot the server answered right
 * after that rev was committed — from the op log, then from checkpoints once
 * housekeeping trimmed the log (rev_too_old below them) — and the diff route.
 */
import t from 'tap'
import fc from 'fast-check'
import { taskType as T, type TaskContent } from '../../src/domain/index.js'
import { runHousekeeping } from '../../src/storage/housekeeping/run.js'
import { addMember, api, registerOwner, startTestApp } from '../helpers/app.js'
import { buildOp, rawOp } from '../domain/gen.js'

const server = await startTestApp(t, { redis: false })
const owner = await registerOwner(server.url)
const me = api(server.url, owner.accessToken)
const member = await addMember(server.url, owner.accessToken, 'member')
const them = api(server.url, member.accessToken)
const stranger = api(server.url, (await registerOwner(server.url)).accessToken)

const contentOf = (s: Record<string, unknown>): TaskContent => {
  const { id: _i, rev: _r, clock: _c, createdAt: _ca, updatedAt: _u, updatedBy: _b, ...content } = s
  return content as unknown as TaskContent
}

t.test('the snapshot at every rev of a random history, from the log and then from checkpoints', async (t) => {
  const created = await me.post('/api/tasks', { title: 'start', description: 'a b c', tags: ['a'] })
  t.equal(created.status, 201)
  const id = created.body.id as string
  const seen = [null, created.body] // seen[rev] = the snapshot right after rev
  // Ops of the op type's property tests (not deletes: a tombstone ends the history), by two users in turn.
  const raws = fc.sample(rawOp, { numRuns: 40, seed: 16 }).map((r) => ({ ...r, delete: undefined, projectId: undefined, assigneeId: undefined }))
  for (const [i, raw] of raws.entries()) {
    const current = seen[seen.length - 1]
    const op = T.normalize(buildOp(contentOf(current), raw))
    if (Object.keys(op).length === 0) continue
    const res = await (i % 2 ? them : me).patch(`/api/tasks/${id}`, { op, baseRev: current.rev })
    t.equal(res.status, 200, `op ${i}: ${JSON.stringify(res.body?.error ?? '')}`)
    if (res.body.rev === current.rev) continue // an identity after all: no rev
    seen[res.body.rev] = res.body
  }
  const last = seen.length - 1
  t.ok(last > 20, `a history of ${last} revs`)
  for (let rev = 1; rev <= last; rev++) {
    const res = await me.get(`/api/tasks/${id}?rev=${rev}`)
    t.same(res.body, seen[rev], `rev ${rev} from the op log`)
  }

  // Housekeeping keeps 5 ops: the snapshot at last-5 becomes a checkpoint, the revs below it are gone.
  await runHousekeeping(server.app.database, { tombstoneTtlDays: 90, syncLogTtlDays: 30, replayWindowOps: 5 })
  const cut = last - 5
  for (let rev = cut; rev <= last; rev++) t.same((await me.get(`/api/tasks/${id}?rev=${rev}`)).body, seen[rev], `rev ${rev} after the trim`)
  const old = await me.get(`/api/tasks/${id}?rev=${cut - 1}`)
  t.equal(old.status, 409)
  t.equal(old.body.error.code, 'rev_too_old')

  // More edits and a second trim: the first checkpoint still answers its own rev exactly.
  for (let i = 0; i < 6; i++) {
    const res = await me.patch(`/api/tasks/${id}`, { priority: i % 5 })
    if (res.body.rev > seen.length - 1) seen[res.body.rev] = res.body
  }
  await runHousekeeping(server.app.database, { tombstoneTtlDays: 90, syncLogTtlDays: 30, replayWindowOps: 5 })
  t.same((await me.get(`/api/tasks/${id}?rev=${cut}`)).body, seen[cut], 'the first checkpoint')
  const end = seen.length - 1
  for (let rev = end - 5; rev <= end; rev++) t.same((await me.get(`/api/tasks/${id}?rev=${rev}`)).body, seen[rev], `rev ${rev} after the second trim`)
  t.equal((await me.get(`/api/tasks/${id}?rev=${cut + 1}`)).status, 409, 'between two checkpoints with the ops gone: rev_too_old')

  t.equal((await me.get(`/api/tasks/${id}?rev=${end + 1}`)).status, 400, 'a rev ahead of the task')
  t.equal((await me.get(`/api/tasks/${id}?rev=0`)).status, 400)
  t.equal((await stranger.get(`/api/tasks/${id}?rev=1`)).status, 404, "another org's task does not exist")
})

t.test('diff: values at both revs and who changed each field in between', async (t) => {
  const created = await me.post('/api/tasks', { title: 'Draft', priority: 1, tags: ['x'] })
  const id = created.body.id as string
  await me.patch(`/api/tasks/${id}`, { title: 'Draft v2' })                // rev 2: me
  await them.patch(`/api/tasks/${id}`, { status: 'in_progress' })          // rev 3: them
  await them.patch(`/api/tasks/${id}`, { title: 'Draft v3', tags: ['x', 'y'] }) // rev 4: them
  await me.patch(`/api/tasks/${id}`, { priority: 3 })                      // rev 5: me
  await me.patch(`/api/tasks/${id}`, { priority: 1 })                      // rev 6: me, back to 1

  const d = await me.get(`/api/tasks/${id}/diff?from=1&to=6`)
  t.equal(d.status, 200)
  t.same(d.body, {
    taskId: id,
    from: 1,
    to: 6,
    fields: {
      title: { from: 'Draft', to: 'Draft v3', changedBy: [owner.user.id, member.user.id], changes: 2 },
      status: { from: 'todo', to: 'in_progress', changedBy: [member.user.id], changes: 1 },
      tags: { from: ['x'], to: ['x', 'y'], changedBy: [member.user.id], changes: 1 },
      priority: { from: 1, to: 1, changedBy: [owner.user.id], changes: 2 },
    },
  }, 'a field changed and changed back is listed too')
  t.same((await me.get(`/api/tasks/${id}/diff?from=3&to=4`)).body.fields, {
    title: { from: 'Draft v2', to: 'Draft v3', changedBy: [member.user.id], changes: 1 },
    tags: { from: ['x'], to: ['x', 'y'], changedBy: [member.user.id], changes: 1 },
  })
  t.same((await me.get(`/api/tasks/${id}/diff?from=4&to=4`)).body.fields, {}, 'no revs between: nothing')
  t.equal((await me.get(`/api/tasks/${id}/diff?from=5&to=4`)).status, 400)
  t.equal((await me.get(`/api/tasks/${id}/diff?from=1&to=99`)).status, 400)
  t.equal((await me.get(`/api/tasks/${id}/diff?from=1`)).status, 400)
  t.equal((await stranger.get(`/api/tasks/${id}/diff?from=1&to=2`)).status, 404)
})
