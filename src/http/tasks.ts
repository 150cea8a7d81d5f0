/**
 * Task routes (PROTOCOL.md section 5). Every change goes through the sequencer,
 * so REST edits are ordered, merged and fanned out exactly like socket ops.
 * Everything is addressed within the caller's organization: another org's id is 404.
 */
import { randomUUID } from 'node:crypto'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { TaskSyncError } from '../protocol/errors.js'
import { opFromPatch, type TaskOp, type TaskSnapshot } from '../domain/index.js'
import type { TaskPatch } from '../domain/types.js'
import type { TaskInit } from '../protocol/messages.js'
import { contentOf } from '../domain/snapshot.js'
import type { Principal } from '../auth/principal.js'
import { listTasks, loadHistory } from '../storage/tasks.js'
import { decodeCursor, isIdKey, isRankKey, toPage } from './pagination.js'
import { withAttachmentEvents } from '../storage/attachments.js'
import { IdParams, PageOf, bearer, errorResponses } from './schemas.js'
import { CreateTaskBody, DiffQuery, HistoryEntry, OpEvent, OpsQuery, PatchTaskBody, RevQuery, TaskDiff, TaskListItem, TaskListQuery, TaskSnapshot as TaskSchema } from './tasks-schemas.js'
import { searchTasks } from '../storage/task-search.js'
import { historyBetween, snapshotAt } from '../storage/time-travel.js'
import { diffSnapshots } from './task-diff.js'

const HistoryQuery = Type.Object({
  cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 512 })),
  limit: Type.Integer({ minimum: 1, maximum: 500, default: 100 }),
})

/** `"12"`, `W/"12"` or `12` → 12; anything else is a client mistake. */
export function revFromIfMatch(header: string | undefined): number | undefined {
  if (header === undefined) return undefined
  const m = /^\s*(?:W\/)?"?(\d{1,9})"?\s*$/.exec(header)
  if (!m) throw new TaskSyncError('bad_request', 'If-Match must be the rev of the task, e.g. "12"')
  return Number(m[1])
}

/** The optional idempotency key of a body; the sequencer and the comment service check that both or neither are given. */
const key = (b: { clientId?: string; seq?: number }) => ({ clientId: b.clientId ?? null, seq: b.seq ?? null })

const taskRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { sequencer } = app
  app.addHook('onRequest', app.authenticate)

  /** The task as the caller may see it: 404 when missing (or another org's). */
  async function visible(principal: Principal, taskId: string): Promise<TaskSnapshot> {
    const snapshot = await sequencer.snapshot(principal.orgId, taskId)
    if (!snapshot) throw new TaskSyncError('not_found', `task ${taskId} not found`)
    return snapshot
  }

  async function live(principal: Principal, taskId: string): Promise<TaskSnapshot> {
    const snapshot = await visible(principal, taskId)
    if (snapshot.deleted) throw new TaskSyncError('task_deleted', `task ${taskId} is deleted`, { rev: snapshot.rev })
    return snapshot
  }

  app.get(
    '/api/tasks',
    {
      schema: {
        tags: ['tasks'],
        summary: 'Live tasks, filtered (projectId, status, assigneeId, tag); with q, a full-text search ranked best first, each with a snippet',
        security: bearer,
        querystring: TaskListQuery,
        response: { 200: PageOf(TaskListItem), ...errorResponses(400, 401) },
      },
    },
    async (request) => {
      const { cursor, limit, q, ...filters } = request.query
      if (q !== undefined) {
        const key = cursor ? decodeCursor(cursor, isRankKey) : undefined
        const after = key && { tier: key.tier ?? 1, rank: key.rank, id: key.id }
        const hits = await searchTasks(app.database, request.principal.orgId, { ...filters, q, after, limit: limit + 1 })
        const page = toPage(hits, limit, (h) => ({ tier: h.tier, rank: h.rank, id: h.id }))
        return { items: page.items.map((h) => ({ ...h.task, match: { rank: Number(h.rank), snippet: h.snippet } })), nextCursor: page.nextCursor }
      }
      const afterId = cursor ? decodeCursor(cursor, isIdKey).id : undefined
      const rows = await listTasks(app.database, request.principal.orgId, { ...filters, afterId, limit: limit + 1 })
      return toPage(rows, limit, (t) => ({ id: t.id }))
    },
  )

  app.post(
    '/api/tasks',
    {
      schema: {
        tags: ['tasks'],
        summary: 'Create a task (201 with its snapshot; a resent clientId/seq answers 200)',
        security: bearer,
        body: CreateTaskBody,
        response: { 200: TaskSchema, 201: TaskSchema, ...errorResponses(400, 401, 403, 409, 422, 503) },
      },
    },
    async (request, reply) => {
      const { id, clientId, seq, ...init } = request.body
      const res = await sequencer.create({ principal: request.principal, taskId: id ?? randomUUID(), init: init as TaskInit, ...key({ clientId, seq }) })
      return reply.code(res.duplicate ? 200 : 201).header('etag', `"${res.snapshot.rev}"`).send(res.snapshot)
    },
  )

  app.get(
    '/api/tasks/:id',
    {
      schema: {
        tags: ['tasks'],
        summary: 'The task snapshot (a deleted task answers its tombstone); with rev, the snapshot as it was at that rev (409 rev_too_old when history cannot reach it)',
        security: bearer,
        params: IdParams,
        querystring: RevQuery,
        response: { 200: TaskSchema, ...errorResponses(400, 401, 404, 409) },
      },
    },
    async (request, reply) => {
      const current = await visible(request.principal, request.params.id)
      const { rev } = request.query
      const snapshot = rev === undefined ? current : await pastSnapshot(request.principal.orgId, current, rev)
      return reply.header('etag', `"${snapshot.rev}"`).send(snapshot)
    },
  )

  /** The snapshot at `rev` of the task `current`: 400 past its rev, 409 rev_too_old when neither log nor checkpoint reaches it. */
  async function pastSnapshot(orgId: string, current: TaskSnapshot, rev: number): Promise<TaskSnapshot> {
    if (rev > current.rev) throw new TaskSyncError('bad_request', `rev ${rev} is ahead of the task's rev ${current.rev}`)
    const snap = await snapshotAt(app.database, orgId, current, rev)
    if (!snap) throw new TaskSyncError('rev_too_old', `rev ${rev} is older than the task's op log and checkpoints reach`)
    return snap
  }

  app.get(
    '/api/tasks/:id/diff',
    {
      schema: {
        tags: ['tasks'],
        summary: 'Per changed field: its value at rev `from` and at rev `to`, and who changed it in between',
        security: bearer,
        params: IdParams,
        querystring: DiffQuery,
        response: { 200: TaskDiff, ...errorResponses(400, 401, 404, 409) },
      },
    },
    async (request) => {
      const { from, to } = request.query
      if (from > to) throw new TaskSyncError('bad_request', `from (${from}) must not be after to (${to})`)
      const current = await visible(request.principal, request.params.id)
      const orgId = request.principal.orgId
      const [a, b] = [await pastSnapshot(orgId, current, from), await pastSnapshot(orgId, current, to)]
      return diffSnapshots(a, b, await historyBetween(app.database, orgId, current.id, from, to))
    },
  )

  app.patch(
    '/api/tasks/:id',
    {
      schema: {
        tags: ['tasks'],
        summary: 'Change a task: {op, baseRev?} (baseRev defaults to If-Match, then to the current rev) or plain field values',
        security: bearer,
        params: IdParams,
        body: PatchTaskBody,
        response: { 200: TaskSchema, ...errorResponses(400, 401, 403, 404, 409, 410, 422, 503) },
      },
    },
    async (request, reply) => {
      const { op, baseRev, clientId, seq, ...fields } = request.body
      const taskId = request.params.id
      let submit: { op: TaskOp; baseRev: number; patch?: TaskPatch }
      if (op !== undefined) {
        if (Object.keys(fields).length > 0) throw new TaskSyncError('bad_request', 'give either op or field values, not both')
        const rev = baseRev ?? revFromIfMatch(request.headers['if-match']) ?? (await visible(request.principal, taskId)).rev
        submit = { op: op as TaskOp, baseRev: rev }
      } else {
        if (baseRev !== undefined) throw new TaskSyncError('bad_request', 'baseRev goes with op; field values apply to the current snapshot')
        const current = await live(request.principal, taskId)
        submit = { op: opFromPatch(contentOf(current), fields, app.config.limits), baseRev: current.rev, patch: fields as TaskPatch }
      }
      const res = await sequencer.submit({ principal: request.principal, taskId, ...submit, ...key({ clientId, seq }) })
      return reply.header('etag', `"${res.snapshot.rev}"`).send(res.snapshot)
    },
  )

  app.delete(
    '/api/tasks/:id',
    {
      schema: {
        tags: ['tasks'],
        summary: 'Delete a task (410 when already deleted)',
        security: bearer,
        params: IdParams,
        response: { 204: Type.Null(), ...errorResponses(400, 401, 403, 404, 410, 503) },
      },
    },
    async (request, reply) => {
      const current = await live(request.principal, request.params.id)
      await sequencer.submit({ principal: request.principal, taskId: current.id, baseRev: current.rev, op: { delete: true }, clientId: null, seq: null })
      return reply.code(204).send(null)
    },
  )

  app.get(
    '/api/tasks/:id/history',
    {
      schema: {
        tags: ['tasks'],
        summary: 'What changed at each rev, oldest first',
        security: bearer,
        params: IdParams,
        querystring: HistoryQuery,
        response: { 200: PageOf(HistoryEntry), ...errorResponses(400, 401, 404) },
      },
    },
    async (request) => {
      const { cursor, limit } = request.query
      await visible(request.principal, request.params.id)
      const from = cursor ? decodeCursor(cursor, isRevKey).rev + 1 : 1
      const rows = await withAttachmentEvents(
        app.database, request.principal.orgId, request.params.id,
        await loadHistory(app.database, request.principal.orgId, request.params.id, from, limit + 1),
      )
      return toPage(rows, limit, (h) => ({ rev: h.rev }))
    },
  )

  app.get(
    '/api/tasks/:id/ops',
    {
      schema: {
        tags: ['tasks'],
        summary: 'Committed ops with rev ≥ from, shaped like the socket `op` message (rev 1 is the creation)',
        security: bearer,
        params: IdParams,
        querystring: OpsQuery,
        response: { 200: Type.Object({ ops: Type.Array(OpEvent), hasMore: Type.Boolean() }), ...errorResponses(400, 401, 404, 409, 503) },
      },
    },
    async (request, reply) => {
      const { from, limit } = request.query
      const { id } = request.params
      // A catch-up read: through the catch-up gate (sync/catchup-gate.ts), so live commits go first.
      const ops = await app.catchup(async () => {
        const { rev } = await visible(request.principal, id)
        // Devices catching up on one task read the same pages: the op JSON is made once (storage/sync/op-ranges.ts).
        // Read up to the rev just read (one more to tell hasMore): what is held then needs no read of the log.
        return app.opRanges.range(request.principal.orgId, id, from, Math.max(0, Math.min(limit + 1, rev + 1 - from)))
      }, request.principal.deviceId)
      // Never a silent gap: revs from `from` on that the log no longer holds (trimmed to
      // the replay window) are an error, not a page that starts further on.
      if (ops.json.length > 0 && ops.first > Math.max(from, 1)) {
        throw new TaskSyncError('rev_too_old', `the op log of task ${id} starts at rev ${ops.first}, after ${from}: read the snapshot (GET /api/tasks/${id}) instead`)
      }
      const body = `{"ops":[${ops.json.slice(0, limit).join(',')}],"hasMore":${ops.json.length > limit}}`
      return reply.type('application/json; charset=utf-8').send(body as never) // a string is sent as it is
    },
  )
}

function isRevKey(key: unknown): key is { rev: number } {
  return typeof key === 'object' && key !== null && Number.isSafeInteger((key as { rev?: unknown }).rev)
}

export default taskRoutes
