/**
 * The outbox dispatcher, one per instance, all sharing the work through the
 * database: each round fans new events out (one instance at a time), leases due
 * deliveries (`for update skip locked` + a lease) and posts them concurrently, and
 * leases notification mails. A delivery in flight never holds up a round, so a
 * slow receiver only ever occupies its own slots (WEBHOOK_ENDPOINT_CONCURRENCY).
 */
import type { Database } from '../storage/db.js'
import { fanOut, taskKey, type FanOutResult } from '../storage/events/outbox.js'
import { claimDeliveries, markDelivered, markFailed, releaseDeliveries, type ClaimedDelivery } from '../storage/events/webhooks.js'
import { claimMails, markMailed } from '../storage/events/notifications.js'
import { notificationsFor } from './rules.js'
import { sendWebhook } from './sender.js'
import { webhookPayload, type StoredEvent } from './types.js'
import type { Mailer } from './mailer.js'

export interface DispatcherOptions {
  database: Database
  mailer: Mailer
  instanceId: string
  publicUrl: string
  timeoutMs: number
  allowPrivate: boolean
  retryBaseMs: number
  retryWindowMs: number
  concurrency: number
  endpointConcurrency: number
  pollMs: number
  leaseMs: number
  log: { warn(obj: object, msg: string): void; debug(obj: object, msg: string): void }
  /** New notifications, after their transaction committed (to push on sockets). */
  onNotifications(items: FanOutResult['notifications']): void
  /** Every finished attempt (tests and the benchmark watch these). */
  onAttempt?(d: ClaimedDelivery, ok: boolean): void
}

/** Exponential backoff with ±50 % jitter, capped at an hour: the delay before retry number `attempt` (1-based). */
export function retryDelayMs(attempt: number, baseMs: number, random = Math.random): number {
  const exp = Math.min(baseMs * 2 ** Math.max(0, attempt - 1), 3_600_000)
  return Math.round(exp * (0.5 + random()))
}

/** Deliveries of one (endpoint, task) sent in a row under one lease. */
const RUN_LENGTH = 20

export class EventDispatcher {
  private inflight = 0
  private mailing = false
  private mailedAt = 0
  private timer: NodeJS.Timeout | undefined
  private round: Promise<void> | null = null
  private again = false
  private stopped = true

  constructor(private readonly o: DispatcherOptions) {}

  start(): void {
    this.stopped = false
    this.wake()
  }

  async stop(): Promise<void> {
    this.stopped = true
    clearTimeout(this.timer)
    await this.round
  }

  /** Runs a round as soon as possible (new work may be there). */
  wake(): void {
    if (this.stopped) return
    if (this.round) {
      this.again = true
      return
    }
    clearTimeout(this.timer)
    this.timer = setTimeout(() => this.runRound(), 0)
  }

  private runRound(): void {
    this.round = this.work()
      .catch((err) => this.o.log.warn({ err }, 'event dispatch round failed; retrying'))
      .then((busy) => {
        this.round = null
        if (this.stopped) return
        const again = this.again || busy === true
        this.again = false
        // Busy: go again almost at once (a short pause lets a round gather more work).
        this.timer = setTimeout(() => this.runRound(), again ? 5 : this.o.pollMs)
      })
  }

  private async work(): Promise<boolean> {
    const o = this.o
    const fanned = await fanOut(o.database, 500, derive)
    if (fanned.notifications.length > 0) o.onNotifications(fanned.notifications)
    let claimed: ClaimedDelivery[] = []
    const free = o.concurrency - this.inflight
    if (free > 0) claimed = await claimDeliveries(o.database, free, o.endpointConcurrency, RUN_LENGTH, o.leaseMs)
    const runs = new Map<string, ClaimedDelivery[]>()
    for (const d of claimed) {
      const key = `${d.endpointId}:${d.orderKey}`
      runs.set(key, [...(runs.get(key) ?? []), d])
    }
    for (const run of runs.values()) void this.deliverRun(run)
    if (!this.mailing && Date.now() - this.mailedAt >= o.pollMs) void this.mail()
    return fanned.events.length > 0 || claimed.length > 0
  }

  /**
   * Sends one (endpoint, task) run in order, one after the other. A failure, or a
   * run taking half its lease, stops it: the rest is given back and claimed again
   * later, after the failed one (which keeps them waiting: rev order).
   */
  private async deliverRun(run: ClaimedDelivery[]): Promise<void> {
    const o = this.o
    const started = Date.now()
    // Successes are recorded together when the run ends: one statement per run. A
    // crash before that sends them again (same webhook-id): at least once.
    const delivered: Array<{ id: number; status: number; latencyMs: number }> = []
    this.inflight++
    let i = 0
    try {
      for (; i < run.length; i++) {
        if (this.stopped || (i > 0 && Date.now() - started > o.leaseMs / 2)) break
        const d = run[i]
        const result = await sendWebhook(d.url, d.secret, d.event.id, webhookPayload(d.event), { timeoutMs: o.timeoutMs, allowPrivate: o.allowPrivate, instanceId: o.instanceId })
        o.onAttempt?.(d, result.ok)
        if (result.ok) {
          delivered.push({ id: d.id, status: result.status!, latencyMs: result.latencyMs })
          continue
        }
        await markDelivered(o.database, delivered.splice(0))
        if (!this.stopped) {
          const elapsed = Date.now() - Date.parse(d.windowStart)
          const delay = retryDelayMs(d.attempt, o.retryBaseMs)
          const retryAt = elapsed + delay <= o.retryWindowMs ? new Date(Date.now() + delay) : null
          await markFailed(o.database, d, { status: result.status, error: result.error ?? 'failed', latencyMs: result.latencyMs }, retryAt)
        }
        i++
        break
      }
      await markDelivered(o.database, delivered)
      await releaseDeliveries(o.database, run.slice(i).map((d) => d.id))
    } catch (err) {
      o.log.warn({ err, delivery: run[i]?.id }, 'could not record delivery attempts; their leases will run out and they are sent again')
    } finally {
      this.inflight--
      this.wake()
    }
  }

  private async mail(): Promise<void> {
    const o = this.o
    this.mailing = true
    this.mailedAt = Date.now()
    try {
      for (const m of await claimMails(o.database, 20, o.leaseMs)) {
        const link = m.taskId ? `\n\n${o.publicUrl.replace(/\/$/, '')}/tasks/${m.taskId}` : ''
        await o.mailer.send({ to: m.email, subject: m.title, text: `Hello ${m.displayName},\n\n${m.title}.${link}\n\n— tasksync (change which mails you get in your notification settings)` })
        await markMailed(o.database, m.orgId, m.id)
      }
    } catch (err) {
      o.log.warn({ err }, 'sending notification mail failed; retried when its lease runs out')
    } finally {
      this.mailing = false
    }
  }
}

function derive(events: StoredEvent[], facts: Parameters<Parameters<typeof fanOut>[2]>[1]) {
  return events.flatMap((e) =>
    notificationsFor(e, { people: facts.people.get(e.orgId) ?? [], task: e.taskId ? (facts.tasks.get(taskKey(e.orgId, e.taskId)) ?? null) : null }),
  )
}
