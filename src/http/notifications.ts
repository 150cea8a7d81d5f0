/** The caller's notifications: list with unread count, mark read, and their settings (mail per kind, time zone). */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { TaskSyncError } from '../protocol/errors.js'
import { NOTIFICATION_KINDS, type MailPref } from '../events/types.js'
import { listNotifications, loadSettings, markRead, saveSettings, unreadCount } from '../storage/events/notifications.js'
import { Uuid, bearer, errorResponses } from './schemas.js'

const Timestamp = Type.String({ format: 'date-time' })
const Kind = Type.Union([Type.Literal('assigned'), Type.Literal('mentioned'), Type.Literal('commented'), Type.Literal('due_soon'), Type.Literal('overdue')])
const Pref = Type.Union([Type.Literal('immediately'), Type.Literal('digest'), Type.Literal('off')])
const Notification = Type.Object({
  id: Uuid,
  kind: Kind,
  taskId: Type.Union([Uuid, Type.Null()]),
  eventId: Uuid,
  title: Type.String(),
  createdAt: Timestamp,
  readAt: Type.Union([Timestamp, Type.Null()]),
})
const ListQuery = Type.Object(
  {
    unread: Type.Boolean({ default: false }),
    /** Notifications older than this one (the previous page's last id). */
    before: Type.Optional(Uuid),
    limit: Type.Integer({ minimum: 1, maximum: 200, default: 50 }),
  },
  { additionalProperties: false },
)
const Unread = Type.Object({ unread: Type.Integer() })
const ReadBody = Type.Object({ ids: Type.Optional(Type.Array(Uuid, { maxItems: 500 })) }, { additionalProperties: false })
const MailPrefs = Type.Object(Object.fromEntries(NOTIFICATION_KINDS.map((k) => [k, Pref])) as Record<(typeof NOTIFICATION_KINDS)[number], typeof Pref>)
const Settings = Type.Object({ timeZone: Type.String(), mail: MailPrefs })
const SettingsPatch = Type.Object(
  {
    /** An IANA time zone (Europe/Paris); the daily digest goes out at 08:00 there. */
    timeZone: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    mail: Type.Optional(Type.Object(Object.fromEntries(NOTIFICATION_KINDS.map((k) => [k, Type.Optional(Pref)])), { additionalProperties: false })),
  },
  { additionalProperties: false },
)

function validTimeZone(tz: string): boolean {
  try {
    // Intl knows the IANA names PostgreSQL knows (it refuses the rest with a RangeError).
    new Intl.DateTimeFormat('en', { timeZone: tz })
    return /^[A-Za-z][A-Za-z0-9_+\-/]*$/.test(tz)
  } catch {
    return false
  }
}

const notificationRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { database } = app
  app.addHook('onRequest', app.authenticate)
  const tags = ['notifications']
  const settingsOf = async (orgId: string, userId: string) => {
    const s = await loadSettings(database, orgId, userId)
    const mail = Object.fromEntries(NOTIFICATION_KINDS.map((k) => [k, (s.prefs[k] as MailPref | undefined) ?? 'immediately'])) as Record<(typeof NOTIFICATION_KINDS)[number], MailPref>
    return { timeZone: s.timeZone, mail }
  }

  app.get(
    '/api/notifications',
    { schema: { tags, summary: 'Your notifications, newest first, and how many are unread', security: bearer, querystring: ListQuery, response: { 200: Type.Object({ items: Type.Array(Notification), unread: Type.Integer() }), ...errorResponses(401) } } },
    async (request) => listNotifications(database, request.principal.orgId, request.principal.userId, request.query),
  )

  app.get(
    '/api/notifications/unread-count',
    { schema: { tags, security: bearer, response: { 200: Unread, ...errorResponses(401) } } },
    async (request) => ({ unread: await unreadCount(database, request.principal.orgId, request.principal.userId) }),
  )

  app.post(
    '/api/notifications/read',
    { schema: { tags, summary: 'Mark notifications read: {ids} or, without ids, all of them', security: bearer, body: ReadBody, response: { 200: Type.Object({ marked: Type.Integer(), unread: Type.Integer() }), ...errorResponses(401) } } },
    async (request) => {
      const { orgId, userId } = request.principal
      const marked = await markRead(database, orgId, userId, request.body.ids ?? null)
      return { marked, unread: await unreadCount(database, orgId, userId) }
    },
  )

  app.get(
    '/api/notifications/settings',
    { schema: { tags, security: bearer, response: { 200: Settings, ...errorResponses(401) } } },
    async (request) => settingsOf(request.principal.orgId, request.principal.userId),
  )

  app.patch(
    '/api/notifications/settings',
    { schema: { tags, summary: 'Mail per kind (immediately, digest, off) and your time zone', security: bearer, body: SettingsPatch, response: { 200: Settings, ...errorResponses(400, 401) } } },
    async (request) => {
      const { orgId, userId } = request.principal
      const { timeZone, mail } = request.body
      if (timeZone !== undefined && !validTimeZone(timeZone)) throw new TaskSyncError('bad_request', `timeZone: ${timeZone} is not an IANA time zone`, { path: '/timeZone' })
      const prefs = Object.fromEntries(Object.entries(mail ?? {}).filter(([, v]) => v !== undefined)) as Record<string, string>
      await saveSettings(database, orgId, userId, { timeZone, prefs })
      return settingsOf(orgId, userId)
    },
  )
}

export default notificationRoutes
