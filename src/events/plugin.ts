/**
 * Events out: the dispatcher (webhooks, notifications, mails), woken by the
 * commits that write events (the doorbell), the due-date scan and the daily
 * digest on a timer, `notification` messages on the user's sockets (through the
 * bus, so every instance reaches its own sockets), and the outbox figures in
 * /metrics. Decorates `app.events`.
 */
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { Gauge } from 'prom-client'
import { scrapedCounter } from '../metrics/scraped.js'
import { EventDispatcher, type DispatchStats } from './dispatcher.js'
import { Doorbell } from './doorbell.js'
import { createMailer, type Mailer } from './mailer.js'
import { outboxFigures, purgeEvents, scanDueDates, type OutboxFigures } from '../storage/events/outbox.js'
import { runDigests } from '../storage/events/notifications.js'
import type { NotificationDto } from './types.js'

declare module 'fastify' {
  interface FastifyInstance {
    events: {
      dispatcher: EventDispatcher
      mailer: Mailer
      /** One due-date scan now (task.due_soon, task.overdue); how many events it emitted. */
      scanDueDates(): Promise<number>
      /** Sends the digests that are due now; how many. */
      runDigests(): Promise<number>
      /** Deletes delivered events older than EVENT_RETENTION_DAYS; how many. */
      purge(days?: number): Promise<number>
      figures(): Promise<OutboxFigures>
    }
  }
}

const CHANNEL = 'notifications'
/** Least time between two doorbell messages on the bus (other instances wake at most this much later). */
const DOORBELL_GAP_MS = 20

interface NotificationNotice {
  orgId: string
  userId: string
  notification: NotificationDto
}

export default fp(
  async (app) => {
    const { config, database, bus } = app
    const log = app.log.child({ module: 'events' })
    const mailer = createMailer({ smtpUrl: config.SMTP_URL, from: config.MAIL_FROM, dataDir: config.DATA_DIR })
    if (!config.SMTP_URL) log.info({ mailDir: mailer.target }, `no SMTP_URL: notification mails are written as .eml files to ${mailer.target}`)

    // Op commits (task.*, conflict.created) and comment changes wake the dispatchers at
    // once; the rarer writers (members, conflict.resolved, the due-date scan's own
    // wake aside) are found by the next poll. A fan-out rings every dispatcher to claim
    // its deliveries; the announcements tell a dispatcher whether it has peers.
    const doorbell = new Doorbell(bus, config.INSTANCE_ID, () => dispatcher.wake(), DOORBELL_GAP_MS, log)
    const dispatcher = new EventDispatcher({
      database,
      mailer,
      instanceId: config.INSTANCE_ID,
      publicUrl: config.PUBLIC_URL,
      timeoutMs: config.WEBHOOK_TIMEOUT_MS,
      allowPrivate: config.WEBHOOK_ALLOW_PRIVATE === 'true',
      retryBaseMs: config.WEBHOOK_RETRY_BASE_MS,
      retryWindowMs: config.WEBHOOK_RETRY_WINDOW_S * 1000,
      concurrency: config.WEBHOOK_CONCURRENCY,
      endpointConcurrency: config.WEBHOOK_ENDPOINT_CONCURRENCY,
      pipelining: config.WEBHOOK_PIPELINING,
      pollMs: config.EVENT_POLL_MS,
      leaseMs: Math.max(config.EVENT_LEASE_MS, config.WEBHOOK_TIMEOUT_MS + 1000),
      log,
      onFannedOut: () => doorbell.ringOthers(),
      peers: doorbell,
      onNotifications: (items) => {
        for (const n of items) {
          const { orgId, userId, ...notification } = n
          const notice: NotificationNotice = { orgId, userId, notification }
          bus.publish(CHANNEL, JSON.stringify(notice)).catch((err) => log.warn({ err }, 'notification not pushed to sockets (it is in the list)'))
        }
      },
    })

    const digestMail = createDigestSender(mailer, config.PUBLIC_URL)
    app.decorate('events', {
      dispatcher,
      mailer,
      scanDueDates: () => scanDueDates(database),
      runDigests: () => runDigests(database, digestMail),
      purge: (days = config.EVENT_RETENTION_DAYS) => purgeEvents(database, new Date(Date.now() - days * 86_400_000)),
      figures: () => outboxFigures(database),
    })

    // Each instance pushes to its own sockets of the person.
    const unsubscribe = await bus.subscribe(CHANNEL, (payload) => {
      const notice = JSON.parse(payload) as NotificationNotice
      for (const s of app.gateway.sessions) {
        if (s.orgId === notice.orgId && s.userId === notice.userId) s.send({ type: 'notification', notification: notice.notification })
      }
    })

    const unlisten = await doorbell.listen()
    const offCommit = app.sequencer.onCommit(() => doorbell.ring())
    const offComment = app.comments.onComment(() => doorbell.ring())

    registerOutboxMetrics(app)
    registerDispatchMetrics(app, dispatcher.stats)

    let scanTimer: NodeJS.Timeout | undefined
    let scanning: Promise<unknown> = Promise.resolve()
    const scanMs = config.DUE_SCAN_INTERVAL_S * 1000
    const scan = () => {
      scanning = Promise.all([
        scanDueDates(database).then((n) => n > 0 && dispatcher.wake()),
        runDigests(database, digestMail),
      ])
        .catch((err) => log.warn({ err }, 'due-date scan or digest failed; retrying next interval'))
        .finally(() => {
          if (scanTimer) scanTimer = setTimeout(scan, scanMs).unref()
        })
    }
    app.addHook('onReady', async () => {
      if (config.EVENT_DISPATCH === 'true') dispatcher.start()
      if (scanMs > 0) scanTimer = setTimeout(scan, Math.round(scanMs * Math.random())).unref()
    })
    app.addHook('preClose', async () => {
      clearTimeout(scanTimer)
      scanTimer = undefined
      await scanning
      await dispatcher.stop()
    })
    app.addHook('onClose', async () => {
      offCommit()
      offComment()
      doorbell.close()
      await unlisten().catch(() => {})
      await unsubscribe().catch(() => {})
      mailer.close()
    })
  },
  { name: 'events', dependencies: ['config', 'storage', 'bus', 'metrics', 'sequencer', 'comments', 'ws'] },
)

function createDigestSender(mailer: Mailer, publicUrl: string) {
  return (d: Parameters<Parameters<typeof runDigests>[1]>[0]) =>
    mailer.send({
      to: d.email,
      subject: `Your tasksync digest for ${d.day}: ${d.items.length} notification${d.items.length === 1 ? '' : 's'}`,
      text: [`Hello ${d.displayName},`, '', ...d.items.map((i) => `- ${i.title}${i.taskId ? ` (${publicUrl.replace(/\/$/, '')}/tasks/${i.taskId})` : ''}`), '', '— tasksync'].join('\n'),
    })
}

/** Outbox figures, read at scrape time. */
function registerOutboxMetrics(app: FastifyInstance): void {
  let last: Promise<OutboxFigures> | null = null
  const read = () => (last ??= app.events.figures().finally(() => setTimeout(() => (last = null), 500).unref()))
  const gauge = (name: string, help: string, pick: (f: OutboxFigures) => number) =>
    new Gauge({
      name,
      help,
      registers: [app.metrics.registry],
      async collect() {
        this.set(pick(await read()))
      },
    })
  gauge('tasksync_events_pending', 'Outbox events not yet fanned out plus webhook deliveries not yet made', (f) => f.pendingEvents + f.pendingDeliveries)
  gauge('tasksync_events_retrying', 'Pending webhook deliveries that failed at least once', (f) => f.retrying)
  gauge('tasksync_events_dead', 'Webhook deliveries out of retries (dead letters)', (f) => f.dead)
}

/** The dispatcher's own counters, read at scrape time: where its time goes. */
function registerDispatchMetrics(app: FastifyInstance, stats: Readonly<DispatchStats>): void {
  const counter = (name: string, help: string, read: () => number) => scrapedCounter(app.metrics.registry, name, help, read)
  counter('tasksync_events_rounds_total', 'Dispatch rounds (one transaction each: record attempts, fan out, claim)', () => stats.rounds)
  counter('tasksync_events_round_seconds_total', 'Time spent in dispatch rounds', () => stats.roundMs / 1000)
  counter('tasksync_events_fanned_out_total', 'Events fanned out by this instance', () => stats.fannedOut)
  counter('tasksync_events_claimed_total', 'Webhook deliveries leased by this instance', () => stats.claimed)
  counter('tasksync_webhook_attempts_total', 'Webhook delivery attempts made by this instance', () => stats.attempts)
  counter('tasksync_events_delivered_total', 'Webhook deliveries this instance made (the receiver answered 2xx)', () => stats.delivered)
  counter('tasksync_webhook_attempt_seconds_total', 'Time spent in webhook delivery attempts, summed over attempts', () => stats.sendMs / 1000)
}
