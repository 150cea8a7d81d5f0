/**
 * One dispatch round in one transaction (one commit, a handful of round trips):
 * record the attempts of the runs that finished since the last round, fan new
 * events out, then lease the next runs. Recording first frees the heads of those
 * runs' (endpoint, task) pairs, so the claim of the same round can take the pair's
 * next deliveries. The deliveries this round's fan-out wrote are not claimed in the
 * same round (except the appends to runs this dispatcher holds): every dispatcher is
 * rung and the next claims share them — unless the caller knows of no other dispatcher
 * (`claim.fresh`), then its claim takes them at once (a round sooner, and no extra round
 * per burst). If the transaction fails nothing of it stays: the caller keeps
 * its records for the next round, and the leases it held run out as before.
 */
import type { Database } from '../db.js'
import type { NewNotification, StoredEvent } from '../../events/types.js'
import { fanOut, type FanOutFacts, type FanOutResult, type HeldPairs, type LeasedDelivery } from './outbox.js'
import { claimDeliveries, recordAttempts, type AttemptRecords, type ClaimedDelivery } from './webhooks.js'

export interface RoundInput {
  records: AttemptRecords
  /** Null: no fan-out this round (a last recording at shutdown). */
  fanOut: {
    limit: number
    derive: (events: StoredEvent[], facts: FanOutFacts) => NewNotification[]
    needsFacts: (e: StoredEvent) => boolean
    /** Pairs whose run this dispatcher is sending: their new deliveries are leased to it at once. */
    held?: HeldPairs
  } | null
  /** Null when this dispatcher has no free slot. */
  claim: {
    limit: number
    perEndpoint: number
    run: number
    leaseMs: number
    /** Claim what this round's fan-out wrote too: no other dispatcher is there to share it with. */
    fresh?: boolean
  } | null
}

export interface RoundResult extends FanOutResult {
  /** New deliveries of held pairs, leased to this dispatcher by the fan-out. */
  leased: LeasedDelivery[]
  claimed: ClaimedDelivery[]
}

export function dispatchRound(database: Database, input: RoundInput): Promise<RoundResult> {
  return database.db.transaction(async (tx) => {
    await recordAttempts(database, input.records, tx)
    const f = input.fanOut
    const fanned = f ? await fanOut(database, tx, f.limit, f.derive, f.needsFacts, f.held) : { events: [], notifications: [], leased: [] }
    const c = input.claim
    // What this fan-out just wrote is left to the next claims, this dispatcher's or another
    // instance's (rung by the caller): the instance that wins the fan-out does not also take all its work.
    const fresh = c?.fresh ? [] : fanned.events.map((e) => e.seq)
    const claimed = c && c.limit > 0 ? await claimDeliveries(database, tx, c.limit, c.perEndpoint, c.run, c.leaseMs, fresh) : []
    return { ...fanned, claimed }
  })
}
