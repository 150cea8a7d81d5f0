/**
 * REST catch-up (PROTOCOL.md section 5): `POST /api/sync/push` replays an offline
 * queue through the sequencer; `GET /api/sync/pull` pages through every change
 * after a cursor. Thin: validation here, the rules in src/sync.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { TaskSyncError } from '../protocol/errors.js'
import { opContent } from './text.js'
import { Rev, Seq } from '../protocol/messages.js'
import { errorResponses } from './schemas.js'
import { PullAnswer, PushAnswer } from './sync-schemas.js'
import type { PushResult } from '../protocol/sync.js'
import { checkBatch, pushMutations } from '../sync/push.js'
import { pullChanges } from '../storage/sync/pull.js'
import { recordSync, type SyncLogEntry } from '../storage/sync/log.js'
import type { Principal } from '../auth/principal.js'

const Uuid = Type.String({ format: 'uuid' })
const AnyObject = Type.Record(Type.String(), Type.Unknown())

const CommentMutation = Type.Object({
  action: Type.Union([Type.Literal('create'), Type.Literal('edit'), Type.Literal('delete')]),
  commentId: Uuid,
  body: Type.Optional(opContent(Type.String())),
  parentId: Type.Optional(Type.Union([Uuid, Type.Null()])),
})

const Mutation = Type.Object({
  seq: Seq,
  kind: Type.Union([Type.Literal('create'), Type.Literal('op'), Type.Literal('comment')]),
  taskId: Uuid,
  baseRev: Type.Optional(Rev),
  op: Type.Optional(opContent(AnyObject)),
  task: Type.Optional(opContent(AnyObject)),
  comment: Type.Optional(CommentMutation),
})

const PushBody = Type.Object({ clientId: Uuid, mutations: Type.Array(Mutation) })

const PullQuery = Type.Object({
  cursor: Type.Optional(Type.String({ maxLength: 8192 })),
  limit: Type.Optional(Type.Integer({ minimum: 1 })),
})

const syncRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { SYNC_PUSH_MAX_MUTATIONS, SYNC_PUSH_MAX_BYTES, SYNC_PULL_MAX_LIMIT } = app.config

  /** A sync whose log line cannot be written still succeeds: the log is for people, not for the protocol. */
  const log = async (principal: Principal, entry: Omit<SyncLogEntry, 'orgId' | 'userId' | 'deviceId'>) => {
    try {
      await recordSync(app.database, { orgId: principal.orgId, userId: principal.userId, deviceId: principal.deviceId, ...entry })
    } catch (err) {
      app.log.warn({ err }, 'sync log entry not written')
    }
  }

  app.post(
    '/api/sync/push',
    {
      bodyLimit: SYNC_PUSH_MAX_BYTES,
      // Authenticated before a large body is even read.
      onRequest: app.authenticate,
      // Counted before validation, so an oversized batch is 413 whatever its content.
      preValidation: async (request) => {
        const m = (request.body as { mutations?: unknown } | null)?.mutations
        if (Array.isArray(m) && m.length > SYNC_PUSH_MAX_MUTATIONS)
          throw new TaskSyncError('too_large', `a push holds at most ${SYNC_PUSH_MAX_MUTATIONS} mutations; got ${m.length}`)
      },
      schema: {
        tags: ['sync'],
        summary: 'Apply an offline queue of mutations in order, idempotently by (clientId, seq)',
        security: [{ bearer: [] }],
        body: PushBody,
        response: { 200: PushAnswer, ...errorResponses(400, 401, 403, 413, 503) },
      },
    },
    async (request) => {
      const started = performance.now()
      const { clientId, mutations } = request.body
      checkBatch(mutations)
      // Through the catch-up gate: a refusal comes before any mutation ran.
      const outcome = await app.catchup(() => pushMutations({ sequencer: app.sequencer, comments: app.comments }, request.principal, clientId, mutations), request.principal.deviceId)
      const counts = tally(outcome.results)
      await log(request.principal, { kind: 'push', clientId, counts: { mutations: mutations.length, ...counts }, durationMs: performance.now() - started })
      if (outcome.failure !== undefined) {
        request.log.warn({ err: outcome.failure }, 'push stopped at a storage failure')
        throw new TaskSyncError('unavailable', 'storage failed; the results listed were committed, resend the rest', { results: outcome.results })
      }
      return { results: outcome.results }
    },
  )

  app.get(
    '/api/sync/pull',
    {
      onRequest: app.authenticate,
      schema: {
        tags: ['sync'],
        summary: 'Every change after a cursor: {tasks, comments, tombstones, cursor, hasMore, lastSeq} or {reset: true}',
        security: [{ bearer: [] }],
        querystring: PullQuery,
        response: { 200: PullAnswer, ...errorResponses(400, 401, 503) },
      },
    },
    async (request, reply) => {
      const started = performance.now()
      const { cursor, limit } = request.query
      const p = request.principal
      const answer = await app.catchup(() =>
        pullChanges(app.database, {
          orgId: p.orgId,
          deviceId: p.deviceId,
          cursor: cursor === '' ? undefined : cursor,
          limit: Math.min(limit ?? SYNC_PULL_MAX_LIMIT, SYNC_PULL_MAX_LIMIT),
        }),
        p.deviceId,
      )
      const counts: Record<string, number> =
        'reset' in answer
          ? { reset: 1 }
          : { tasks: answer.tasks.length, comments: answer.comments.length, tombstones: answer.tombstones.length, hasMore: answer.hasMore ? 1 : 0 }
      await log(p, { kind: 'pull', counts, durationMs: performance.now() - started })
      // The answer is built field by field in the schema's order (toSnapshot, toComment), so
      // JSON.stringify writes the bytes the schema's serializer would. That serializer, for a
      // union at the root, first validates the whole page against each branch to choose one:
      // about 60% of a full pull's server time (load/pull-bench.ts, --cpu-prof).
      return reply.type('application/json; charset=utf-8').send(JSON.stringify(answer) as never) // a string is sent as it is
    },
  )
}

function tally(results: PushResult[]): Record<PushResult['status'], number> {
  const counts = { applied: 0, duplicate: 0, rejected: 0 }
  for (const r of results) counts[r.status]++
  return counts
}

export default syncRoutes
