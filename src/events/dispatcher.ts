/**
 * The outbox dispatcher, one per instance, all sharing the work through the
 * database. A round is one transaction: it records what the runs finished since the
 * last round learnt (delivered, failed, given back), fans new events out (one
 * instance at a time) and leases the next runs (`for update skip locked` + a
 * lease). Runs are posted concurrently, each (endpoint, task) run in order, on
 * kept-alive connections; a run in flight never holds up a round, so a slow
 * receiver only ever occupies its own slots (WEBHOOK_ENDPOINT_CONCURRENCY).
 * Rounds run when woken (a commit on this instance wrote events, another instance
 * rang, a run finished) or every EVENT_POLL_MS when idle; mails are leased apart.
 */
import type { Database } from '../storage/db.js'
import { taskKey, type FanOutFacts, type FanOutResult } from '../storage/events/outbox.js'
import { noRecords, recordCount, type AttemptRecords, type ClaimedDelivery } from '../storage/events/webhooks.js'
import { dispatchRound } from '../storage/events/round.js'
import { claimMails, markMailed } from '../storage/events/notifications.js'
import { mayNotify, notificationsFor } from './rules.js'
import { createAgents, sendWebhook, type WebhookAgents } from './sender.js'
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
/** Events fanned out per round. */
const FANOUT_BATCH = 500

/** Where a dispatcher's time goes (read by /metrics). */
export interface DispatchStats {
  rounds: number
  roundMs: number
  fannedOut: number
  claimed: number
  attempts: number
  /** Summed over attempts (they overlap). */
  sendMs: number
}

export class EventDispatcher {
  private inflight = 0
  private mailing = false
  private mailedAt = 0
  private timer: NodeJS.Timeout | undefined
  private round: Promise<void> | null = null
  private again = false
  private stopped = true
  /** What finished runs learnt, recorded by the next round. */
  private records: AttemptRecords = noRecords()
  private agents: WebhookAgents | null = null
  readonly stats: DispatchStats = { rounds: 0, roundMs: 0, fannedOut: 0, claimed: 0, attempts: 0, sendMs: 0 }

  constructor(private readonly o: DispatcherOptions) {}

  start(): void {
    this.stopped = false
    this.agents ??= createAgents()
    this.wake()
  }

  /**
   * Stops dispatching: the round under way ends and what finished runs learnt is
   * recorded. Requests still in flight are cut off unrecorded: their leases run
   * out and they are sent again, with the same webhook-id.
   */
  async stop(): Promise<void> {
    this.stopped = true
    clearTimeout(this.timer)
    await this.round
    const records = this.takeRecords()
    if (recordCount(records) > 0) {
      await dispatchRound(this.o.database, { records, fanOut: null, claim: null }).catch((err) =>
        this.o.log.warn({ err }, 'could not record the last delivery attempts; their leases will run out and they are sent again'),
      )
    }
    this.agents?.http.destroy()
    this.agents?.https.destroy()
    this.agents = null
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

  private takeRecords(): AttemptRecords {
    const r = this.records
    this.records = noRecords()
    return r
  }

  private keep(r: AttemptRecords): void {
    this.records.delivered.push(...r.delivered)
    this.records.failed.push(...r.failed)
    this.records.released.push(...r.released)
  }

  private async work(): Promise<boolean> {
    const o = this.o
    const records = this.takeRecords()
    const free = o.concurrency - this.inflight
    const claim = free > 0 ? { limit: free, perEndpoint: o.endpointConcurrency, run: RUN_LENGTH, leaseMs: o.leaseMs } : null
    const started = performance.now()
    let round: Awaited<ReturnType<typeof dispatchRound>>
    try {
      round = await dispatchRound(o.database, { records, fanOut: { limit: FANOUT_BATCH, derive, needsFacts: mayNotify }, claim })
    } catch (err) {
      this.keep(records) // recorded by the next round (the leases still hold them meanwhile)
      throw err
    }
    this.stats.rounds++
    this.stats.roundMs += performance.now() - started
    this.stats.fannedOut += round.events.length
    this.stats.claimed += round.claimed.length
    if (round.notifications.length > 0) o.onNotifications(round.notifications)
    const runs = new Map<string, ClaimedDelivery[]>()
    for (const d of round.claimed) {
      const key = `${d.endpointId}:${d.orderKey}`
      runs.set(key, [...(runs.get(key) ?? []), d])
    }
    for (const run of runs.values()) void this.deliverRun(run)
    if (!this.mailing && Date.now() - this.mailedAt >= o.pollMs) void this.mail()
    // More may be waiting when a round took all it could.
    return round.events.length >= FANOUT_BATCH || (claim !== null && runs.size >= claim.limit)
  }

  /**
   * Sends one (endpoint, task) run in order, one after the other. A failure, or a
   * run taking half its lease, stops it: the rest is given back and claimed again
   * later, after the failed one (which keeps them waiting: rev order). What it
   * learnt is recorded by the next round; a crash before that sends the run again
   * (same webhook-ids): at least once.
   */
  private async deliverRun(run: ClaimedDelivery[]): Promise<void> {
    const o = this.o
    const started = Date.now()
    const out = noRecords()
    this.inflight++
    let i = 0
    try {
      for (; i < run.length; i++) {
        if (this.stopped || (i > 0 && Date.now() - started > o.leaseMs / 2)) break
        const d = run[i]
        const result = await sendWebhook(d.url, d.secret, d.event.id, webhookPayload(d.event), {
          timeoutMs: o.timeoutMs,
          allowPrivate: o.allowPrivate,
          instanceId: o.instanceId,
          agents: this.agents ?? undefined,
        })
        this.stats.attempts++
        this.stats.sendMs += result.latencyMs
        o.onAttempt?.(d, result.ok)
        if (result.ok) {
          out.delivered.push({ id: d.id, status: result.status!, latencyMs: result.latencyMs })
          continue
        }
        const elapsed = Date.now() - Date.parse(d.windowStart)
        const delay = retryDelayMs(d.attempt, o.retryBaseMs)
        const retryAt = elapsed + delay <= o.retryWindowMs ? new Date(Date.now() + delay) : null
        out.failed.push({ id: d.id, orgId: d.orgId, endpointId: d.endpointId, status: result.status, error: result.error ?? 'failed', latencyMs: result.latencyMs, retryAt })
        i++
        break
      }
      out.released.push(...run.slice(i).map((d) => d.id))
    } finally {
      this.inflight--
      // Once stopped, nothing more is recorded (stop() recorded what was learnt before).
      if (!this.stopped) this.keep(out)
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

function derive(events: StoredEvent[], facts: FanOutFacts) {
  return events.flatMap((e) =>
    notificationsFor(e, { people: facts.people.get(e.orgId) ?? [], task: e.taskId ? (facts.tasks.get(taskKey(e.orgId, e.taskId)) ?? null) : null }),
  )
}
