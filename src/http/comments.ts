/**
 * Comment routes (PROTOCOL.md section 5): list and add under a task, edit and
 * delete by comment id. Changes go through the CommentService, so they are
 * idempotent by (clientId, seq) and fanned out like socket comments.
 */
import { randomUUID } from 'node:crypto'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { TaskSyncError } from '../protocol/errors.js'
import { listComments } from '../storage/comments.js'
import { decodeCursor, toPage } from './pagination.js'
import { IdParams, PageOf, PageQuery, bearer, errorResponses } from './schemas.js'
import { Comment, CreateCommentBody, EditCommentBody } from './tasks-schemas.js'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

function isCommentKey(key: unknown): key is { createdAt: string; id: string } {
  const k = key as { createdAt?: unknown; id?: unknown }
  return (
    typeof key === 'object' && key !== null && typeof k.id === 'string' && UUID.test(k.id) &&
    typeof k.createdAt === 'string' && !Number.isNaN(Date.parse(k.createdAt))
  )
}

/** The optional idempotency key of a body; the sequencer and the comment service check that both or neither are given. */
const key = (b: { clientId?: string; seq?: number }) => ({ clientId: b.clientId ?? null, seq: b.seq ?? null })

const commentRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { comments, sequencer } = app
  app.addHook('onRequest', app.authenticate)

  app.get(
    '/api/tasks/:id/comments',
    {
      schema: {
        tags: ['comments'],
        summary: "A task's comments, oldest first (deleted ones as tombstones, so replies keep their thread)",
        security: bearer,
        params: IdParams,
        querystring: PageQuery,
        response: { 200: PageOf(Comment), ...errorResponses(400, 401, 404) },
      },
    },
    async (request) => {
      const { orgId } = request.principal
      const { cursor, limit } = request.query
      if (!(await sequencer.snapshot(orgId, request.params.id))) throw new TaskSyncError('not_found', `task ${request.params.id} not found`)
      const after = cursor ? decodeCursor(cursor, isCommentKey) : undefined
      const rows = await listComments(app.database, orgId, request.params.id, after, limit + 1)
      return toPage(rows, limit, (c) => ({ createdAt: c.createdAt, id: c.id }))
    },
  )

  app.post(
    '/api/tasks/:id/comments',
    {
      schema: {
        tags: ['comments'],
        summary: 'Add a comment (201; a resent clientId/seq answers 200 with the comment)',
        security: bearer,
        params: IdParams,
        body: CreateCommentBody,
        response: { 200: Comment, 201: Comment, ...errorResponses(400, 401, 403, 404, 409, 410, 422, 503) },
      },
    },
    async (request, reply) => {
      const { id, body, parentId, clientId, seq } = request.body
      const res = await comments.create({
        principal: request.principal,
        taskId: request.params.id,
        commentId: id ?? randomUUID(),
        body,
        parentId: parentId ?? null,
        ...key({ clientId, seq }),
      })
      return reply.code(res.duplicate ? 200 : 201).send(res.comment)
    },
  )

  app.patch(
    '/api/comments/:id',
    {
      schema: {
        tags: ['comments'],
        summary: 'Edit a comment (its author only)',
        security: bearer,
        params: IdParams,
        body: EditCommentBody,
        // 409: a (clientId, seq) already used by another mutation (resend digests).
        response: { 200: Comment, ...errorResponses(400, 401, 403, 404, 409, 410, 422, 503) },
      },
    },
    async (request) => {
      const { body, clientId, seq } = request.body
      const res = await comments.edit({ principal: request.principal, commentId: request.params.id, body, ...key({ clientId, seq }) })
      return res.comment
    },
  )

  app.delete(
    '/api/comments/:id',
    {
      schema: {
        tags: ['comments'],
        summary: 'Delete a comment (its author or an admin); it stays as a tombstone',
        security: bearer,
        params: IdParams,
        response: { 204: Type.Null(), ...errorResponses(400, 401, 403, 404, 410, 503) },
      },
    },
    async (request, reply) => {
      await comments.delete({ principal: request.principal, commentId: request.params.id, clientId: null, seq: null })
      return reply.code(204).send(null)
    },
  )
}

export default commentRoutes
