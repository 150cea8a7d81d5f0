/**
 * The outbox dispatcher, one per instance, all sharing the work through the
 * database. A round is one transaction: it records what the runs finished since the
 * last round learnt (delivered, failed, given back), fans new events out (one
 * instance at a time) and leases the next runs (`for update skip locked` + a
 * lease). Runs are posted concurrently, each (endpoint, task) run in order, on
 * kept-alive connections; a run in flight never holds up a round, so a slow
 * receiver only ever occupies its own slots (WEBHOOK_ENDPOINT_CONCURRENCY). A run
 * still sending when a round fans out new events of its pair gets them appended
 * (leased by the fan-out itself), so a busy task's events do not wait for the run
 * to end and another round to claim them.
 * Rounds run when woken (a commit on this instance wrote events, another instance
 * rang, a run finished) or every EVENT_POLL_MS when idle; mails are leased apart.
 * A round's fan-out leaves its new deliveries to the claims of every dispatcher
 * (rung at once) so instances share a burst — unless this one has no peers, then its
 * own claim takes them in the same round.
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
  /** Requests in flight per connection to an endpoint (WEBHOOK_PIPELINING). */
  pipelining?: number
  pollMs: number
  leaseMs: number
  log: { warn(obj: object, msg: string): void; debug(obj: object, msg: string): void }
  /** New notifications, after their transaction committed (to push on sockets). */
  onNotifications(items: FanOutResult['notifications']): void
  /** A round fanned out new events: wake the other instances' dispatchers to claim their share of the deliveries (this one's next round waits HANDOFF_MS). */
  onFannedOut?(): void
  /** Every finished attempt (tests and the benchmark watch these). */
  onAttempt?(d: ClaimedDelivery, ok: boolean): void
  /** The other running dispatchers, as far as this one knows (the doorbell's announcements); none given: it assumes it has peers. */
  peers?: DispatcherPeers
}

/** How a dispatcher learns whether it shares the outbox with others. */
export interface DispatcherPeers {
  /** Tell the others this dispatcher runs (until `silence`). */
  announce(): void
  silence(): void
  /** No other dispatcher heard from lately. */
  alone(): boolean
}

/** Exponential backoff with ±50 % jitter, capped at an hour: the delay before retry number `attempt` (1-based). */
export function retryDelayMs(attempt: number, baseMs: number, random = Math.random): number {
  const exp = Math.min(baseMs * 2 ** Math.max(0, attempt - 1), 3_600_000)
  return Math.round(exp * (0.5 + random()))
}

/** Deliveries of one (endpoint, task) claimed in a row under one lease. */
const RUN_LENGTH = 20
/** A run takes appended deliveries until it has had this many (then it ends and the pair queues for a slot again). */
const RUN_APPEND_LIMIT = 2 * RUN_LENGTH
/** Events fanned out per round. */
const FANOUT_BATCH = 500
/** How long a dispatcher that fanned events out leaves the claim of their deliveries to the other instances (rung through the bus); alone, how long it lets events gather before its next round. */
const HANDOFF_MS = 15

/** Where a dispatcher's time goes (read by /metrics). */
export interface DispatchStats {
  rounds: number
  roundMs: number
  fannedOut: number
  claimed: number
  attempts: number
  /** Attempts the receiver answered with 2xx. */
  delivered: number
  /** Summed over attempts (they overlap). */
  sendMs: number
}

/** One (endpoint, task) run being sent, in seq order; `leasedAt` per delivery bounds how long it may still be sent. */
interface Run {
  key: string
  endpointId: string
  orderKey: string
  queue: Array<ClaimedDelivery & { leasedAt: number }>
  /** Deliveries it has had (claimed and appended). */
  taken: number
  startedAt: number
  /** sending; done: ended with every delivery sent and answered 2xx; blocked: ended by a failure, a stop or its lease. */
  state: 'sending' | 'done' | 'blocked'
}

/** Deliveries by (endpoint, task) pair, each pair's in the order given (rev order). */
function byPair<D extends { endpointId: string; orderKey: string }>(deliveries: D[]): Map<string, D[]> {
  const pairs = new Map<string, D[]>()
  for (const d of deliveries) {
    const key = `${d.endpointId}:${d.orderKey}`
    const list = pairs.get(key)
    if (list) list.push(d)
    else pairs.set(key, [d])
  }
  return pairs
}

export class EventDispatcher {
  private inflight = 0
  /** Runs being sent, by `endpoint:orderKey`. */
  private readonly runs = new Map<string, Run>()
  private mailing = false
  private mailedAt = 0
  private timer: NodeJS.Timeout | undefined
  /** The timer runs the next round within HANDOFF_MS: a wake need not bring it forward (nor reset a timer per commit). */
  private soon = false
  private round: Promise<void> | null = null
  private again = false
  /** The last round fanned events out: the next one waits HANDOFF_MS. */
  private fanned = false
  private stopped = true
  /** What finished runs learnt, recorded by the next round. */
  private records: AttemptRecords = noRecords()
  private agents: WebhookAgents | null = null
  readonly stats: DispatchStats = { rounds: 0, roundMs: 0, fannedOut: 0, claimed: 0, attempts: 0, delivered: 0, sendMs: 0 }

  constructor(private readonly o: DispatcherOptions) {}

  start(): void {
    this.stopped = false
    this.soon = false
    this.agents ??= createAgents(this.o.pipelining)
    this.o.peers?.announce()
    this.wake()
  }

  /**
   * Stops dispatching: the round under way ends and what finished runs learnt is
   * recorded. Requests still in flight are cut off unrecorded: their leases run
   * out and they are sent again, with the same webhook-id.
   */
  async stop(): Promise<void> {
    this.stopped = true
    this.o.peers?.silence()
    clearTimeout(this.timer)
    this.soon = false
    await this.round
    const records = this.takeRecords()
    if (recordCount(records) > 0) {
      await dispatchRound(this.o.database, { records, fanOut: null, claim: null }).catch((err) =>
        this.o.log.warn({ err }, 'could not record the last delivery attempts; their leases will run out and they are sent again'),
      )
    }
    const agents = this.agents
    this.agents = null
    await agents?.destroy()
  }

  /** Runs a round as soon as possible (new work may be there). */
  wake(): void {
    if (this.stopped) return
    if (this.round) {
      this.again = true
      return
    }
    if (this.soon) return
    clearTimeout(this.timer)
    this.soon = true
    this.timer = setTimeout(() => this.runRound(), 0)
  }

  private runRound(): void {
    this.soon = false
    this.round = this.work()
      .catch((err) => this.o.log.warn({ err }, 'event dispatch round failed; retrying'))
      .then((busy) => {
        this.round = null
        if (this.stopped) return
        const again = this.again || busy === true
        this.again = false
        const handOff = this.fanned
        this.fanned = false
        // Busy: go again almost at once (a short pause lets a round gather more work). After
        // a fan-out, a longer one: the other instances, rung at once, claim first their share
        // of what it wrote (the fanning instance would otherwise win every claim by being first).
        this.soon = again
        this.timer = setTimeout(() => this.runRound(), again ? (handOff ? HANDOFF_MS : 5) : this.o.pollMs)
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
    // Alone, nobody else would claim what the fan-out writes: this round's claim takes it.
    const alone = o.peers?.alone() ?? false
    const claim = free > 0 ? { limit: free, perEndpoint: o.endpointConcurrency, run: RUN_LENGTH, leaseMs: o.leaseMs, fresh: alone } : null
    const started = performance.now()
    const leasedAt = Date.now()
    // The runs that may take appended deliveries: young enough to send them well within their lease.
    const held = new Map([...this.runs].filter(([, r]) => r.state === 'sending' && r.taken < RUN_APPEND_LIMIT && leasedAt - r.startedAt < o.leaseMs / 4))
    const heldPairs = { pairs: [...held.values()].map((r) => ({ endpointId: r.endpointId, orderKey: r.orderKey })), leaseMs: o.leaseMs }
    let round: Awaited<ReturnType<typeof dispatchRound>>
    try {
      round = await dispatchRound(o.database, { records, fanOut: { limit: FANOUT_BATCH, derive, needsFacts: mayNotify, held: heldPairs }, claim })
    } catch (err) {
      this.keep(records) // recorded by the next round (the leases still hold them meanwhile)
      throw err
    }
    this.stats.rounds++
    this.stats.roundMs += performance.now() - started
    this.stats.fannedOut += round.events.length
    this.stats.claimed += round.claimed.length + round.leased.length
    if (round.notifications.length > 0) o.onNotifications(round.notifications)
    if (round.events.length > 0) {
      // The next round waits HANDOFF_MS: the other instances, rung now, claim first; alone,
      // the pause lets more events gather for the next round (fewer rounds per event).
      this.fanned = true
      if (!alone) o.onFannedOut?.()
    }
    for (const [key, ds] of byPair(round.leased)) {
      const run = held.get(key)
      const items = ds.map((d) => ({ ...d, orgId: d.event.orgId, attempt: 1, leasedAt }))
      if (run?.state === 'sending') {
        run.queue.push(...items)
        run.taken += items.length
      } else if (run?.state === 'done' && !this.runs.has(key)) {
        // The run ended with all it had delivered: these come next in the pair's order,
        // in a run that carries on its count and age (so the pair still gives up its slot in time).
        this.startRun(key, items, run.startedAt, run.taken + items.length)
      } else if (!this.stopped) {
        // The run ended on a failure (or a stop): they wait behind it.
        this.records.released.push(...items.map((d) => d.id))
      }
    }
    const runs = byPair(round.claimed)
    for (const [key, run] of runs) this.startRun(key, run.map((d) => ({ ...d, leasedAt })), leasedAt, run.length)
    if (!this.mailing && Date.now() - this.mailedAt >= o.pollMs) void this.mail()
    // More may be waiting when a round took all it could.
    // A fan-out's deliveries are claimed from the next round on (dispatchRound): go again at once.
    return round.events.length > 0 || (claim !== null && runs.size >= claim.limit)
  }

  private startRun(key: string, queue: Run['queue'], startedAt: number, taken: number): void {
    const run: Run = { key, endpointId: queue[0].endpointId, orderKey: queue[0].orderKey, queue, taken, startedAt, state: 'sending' }
    this.runs.set(key, run)
    void this.deliverRun(run)
  }

  /**
   * Sends one (endpoint, task) run in order, one after the other, including what
   * rounds append to it meanwhile. A failure, or a delivery leased half its lease
   * ago, stops it: the rest is given back and claimed again later, after the
   * failed one (which keeps them waiting: rev order). What it learns is recorded by
   * the next round; a crash before that sends the run again (same webhook-ids):
   * at least once.
   */
  private async deliverRun(run: Run): Promise<void> {
    const o = this.o
    this.inflight++
    let clean = true
    try {
      for (let i = 0; run.queue.length > 0; i++) {
        const d = run.queue[0]
        if (this.stopped || (i > 0 && Date.now() - d.leasedAt > o.leaseMs / 2)) {
          clean = false
          break
        }
        run.queue.shift()
        const result = await sendWebhook(d.url, d.secret, d.event.id, webhookPayload(d.event), {
          timeoutMs: o.timeoutMs,
          allowPrivate: o.allowPrivate,
          instanceId: o.instanceId,
          agents: this.agents ?? undefined,
        })
        this.stats.attempts++
        this.stats.sendMs += result.latencyMs
        o.onAttempt?.(d, result.ok)
        // Once stopped, nothing more is recorded (stop() recorded what was learnt before).
        if (result.ok) {
          this.stats.delivered++
          if (!this.stopped) this.records.delivered.push({ id: d.id, status: result.status!, latencyMs: result.latencyMs })
          continue
        }
        const elapsed = Date.now() - Date.parse(d.windowStart)
        const delay = retryDelayMs(d.attempt, o.retryBaseMs)
        const retryAt = elapsed + delay <= o.retryWindowMs ? new Date(Date.now() + delay) : null
        if (!this.stopped) this.records.failed.push({ id: d.id, orgId: d.orgId, endpointId: d.endpointId, status: result.status, error: result.error ?? 'failed', latencyMs: result.latencyMs, retryAt })
        clean = false
        break
      }
    } finally {
      run.state = clean && !this.stopped ? 'done' : 'blocked'
      const rest = run.queue.splice(0)
      if (!this.stopped) this.records.released.push(...rest.map((d) => d.id))
      if (this.runs.get(run.key) === run) this.runs.delete(run.key)
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

function derive(events: StoredEvent[], facts: FanOutFacts) {
  return events.flatMap((e) =>
    notificationsFor(e, { people: facts.people.get(e.orgId) ?? [], task: e.taskId ? (facts.tasks.get(taskKey(e.orgId, e.taskId)) ?? null) : null }),
  )
}
