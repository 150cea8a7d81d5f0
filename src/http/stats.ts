/** `GET /api/stats`: the dashboard's figures for the caller's organization (any role). */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { OVERDUE_LISTED, STATS_DAYS, orgStats } from '../storage/stats.js'
import { Uuid, bearer, errorResponses } from './schemas.js'

const Count = Type.Integer({ minimum: 0 })
const Status = Type.Union([Type.Literal('todo'), Type.Literal('in_progress'), Type.Literal('in_review'), Type.Literal('done'), Type.Literal('cancelled')])
const Timestamp = Type.String({ format: 'date-time' })

export const Stats = Type.Object(
  {
    generatedAt: Timestamp,
    days: Type.Integer({ description: 'Days covered by perDay, today (UTC) included' }),
    totals: Type.Object({
      tasks: Type.Integer({ minimum: 0, description: 'Live (not deleted) tasks' }),
      open: Type.Integer({ minimum: 0, description: 'Live tasks neither done nor cancelled' }),
      overdue: Type.Integer({ minimum: 0, description: 'Open tasks whose due date has passed' }),
    }),
    byStatus: Type.Array(Type.Object({ status: Status, count: Count }), { description: 'Every status, in board order' }),
    byPriority: Type.Array(Type.Object({ priority: Type.Integer({ minimum: 0, maximum: 4 }), count: Count }), { description: 'Priorities 0 (none) to 4 (urgent)' }),
    byAssignee: Type.Array(
      Type.Object({ assigneeId: Type.Union([Uuid, Type.Null()]), displayName: Type.Union([Type.String(), Type.Null()]), count: Count }),
      { description: 'Live tasks per assignee, most first; assigneeId null: unassigned' },
    ),
    perDay: Type.Array(
      Type.Object({
        date: Type.String({ pattern: '^\\d{4}-\\d{2}-\\d{2}$', description: 'UTC day' }),
        created: Type.Integer({ minimum: 0, description: 'Tasks created that day (deleted ones included)' }),
        completed: Type.Integer({ minimum: 0, description: 'Changes of a status to done that day' }),
      }),
      { description: `The last ${STATS_DAYS} days, oldest first` },
    ),
    overdue: Type.Array(
      Type.Object({ id: Uuid, title: Type.String(), dueAt: Timestamp, status: Status, assigneeId: Type.Union([Uuid, Type.Null()]) }),
      { description: `The ${OVERDUE_LISTED} most overdue open tasks` },
    ),
    conflicts: Type.Object({
      open: Type.Integer({ minimum: 0, description: 'Waiting for a person now' }),
      raised: Type.Integer({ minimum: 0, description: `Recorded in the last ${STATS_DAYS} days` }),
      settled: Type.Integer({ minimum: 0, description: `Resolved in the last ${STATS_DAYS} days` }),
    }),
  },
  { additionalProperties: false },
)

const statsRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/api/stats',
    {
      onRequest: app.authenticate,
      schema: {
        tags: ['stats'],
        summary: `The organization's dashboard: tasks by status, priority and assignee, created and completed per day over ${STATS_DAYS} days, overdue tasks, conflicts raised and settled`,
        security: bearer,
        response: { 200: Stats, ...errorResponses(401, 503) },
      },
    },
    async (request) => orgStats(app.database, request.principal.orgId),
  )
}

export default statsRoutes
