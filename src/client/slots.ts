/**
 * Writer slots: one storage, several live clients (browser tabs, Node
 * processes), each its own writer. A slot is one writer's whole state (its
 * clientId and seq counter, its tasks with their unacknowledged ops, its
 * comment outbox) kept under the keys `w:<clientId>:…`; a client writes only
 * in the slot whose lock it holds.
 *
 * A client starting takes the first slot whose lock is free (a reload takes
 * back a slot, a new tab a free one) or makes a new slot, seeded with the
 * confirmed snapshots the other slots hold. Slots are never deleted: the
 * clientId and its seq counter stay, so a clientId never starts its seqs again.
 */
import { TaskSyncError } from '../protocol/errors.js'
import { newId } from './ids.js'
import type { ClientStorage, StorageChanges } from './storage.js'
import type { StoredMeta, StoredTask, CommentMutation } from './types.js'
import type { WriterLease, WriterLocks } from './writer-locks.js'

const PREFIX = 'w:'
const slotKey = (clientId: string, key: string) => `${PREFIX}${clientId}:${key}`
/** Keys of a slot inside it (what a single-writer client stores): `meta`, `task:<id>`, `comments`. */
const isSlotInner = (key: string) => key === 'meta' || key === 'comments' || key.startsWith('task:')

/** Every slot in `stored`: clientId → its keys as the client sees them. Keys from before slots form the slot of their clientId. */
export function slotsIn(stored: Record<string, unknown>): Map<string, Record<string, unknown>> {
  const out = new Map<string, Record<string, unknown>>()
  for (const [key, value] of Object.entries(stored)) {
    if (!key.startsWith(PREFIX)) continue
    const cut = key.indexOf(':', PREFIX.length)
    if (cut < 0) continue
    const id = key.slice(PREFIX.length, cut)
    let slot = out.get(id)
    if (!slot) out.set(id, (slot = {}))
    slot[key.slice(cut + 1)] = value
  }
  const legacy = (stored.meta as StoredMeta | undefined)?.clientId
  if (legacy && !out.has(legacy)) {
    const slot: Record<string, unknown> = {}
    for (const [key, value] of Object.entries(stored)) if (isSlotInner(key)) slot[key] = value
    out.set(legacy, slot)
  }
  for (const [id, slot] of out) if (!(slot.meta as StoredMeta | undefined)?.clientId) out.delete(id)
  return out
}

/** True when the slot holds something the server has not acknowledged (ops in flight or pending, comment changes). */
export function hasQueue(slot: Record<string, unknown>): boolean {
  if (((slot.comments as CommentMutation[] | null | undefined) ?? []).length > 0) return true
  for (const [key, value] of Object.entries(slot)) {
    if (!key.startsWith('task:') || !value) continue
    const t = value as StoredTask
    if (t.inflight || t.pending) return true
  }
  return false
}

/** The storage of one slot: the root storage seen through the slot's key prefix. */
export function slotStorage(root: ClientStorage, clientId: string): ClientStorage {
  return {
    keepsBlobs: root.keepsBlobs,
    async load() {
      return slotsIn(await root.load()).get(clientId) ?? {}
    },
    save(changes: StorageChanges) {
      const out: StorageChanges = {}
      for (const [k, v] of Object.entries(changes)) out[slotKey(clientId, k)] = v
      return root.save(out)
    },
  }
}

/** Moves a slot kept under the keys of before slots to its prefix (one atomic batch); the caller holds its lock. */
async function moveLegacy(root: ClientStorage, stored: Record<string, unknown>, clientId: string): Promise<Record<string, unknown>> {
  if ((stored.meta as StoredMeta | undefined)?.clientId !== clientId || stored[slotKey(clientId, 'meta')]) return stored
  const changes: StorageChanges = {}
  for (const [key, value] of Object.entries(stored)) {
    if (!isSlotInner(key)) continue
    changes[key] = null
    changes[slotKey(clientId, key)] = value
  }
  await root.save(changes)
  return root.load()
}

/** Reads the slot of `clientId` (moving it from the keys of before slots); the caller holds its lock. */
export async function readSlot(root: ClientStorage, clientId: string): Promise<Record<string, unknown> | undefined> {
  const stored = await moveLegacy(root, await root.load(), clientId)
  return slotsIn(stored).get(clientId)
}

/** The slot a client writes as, with the lock that makes it the slot's only writer. */
export interface WriterSlot {
  clientId: string
  lease: WriterLease
  /** True when this slot was just made. */
  created: boolean
}

/**
 * Takes a slot: `wanted` (refused with already_exists while another client
 * holds it), else the first one whose lock is free, else a new one.
 */
export async function claimSlot(root: ClientStorage, locks: WriterLocks, wanted?: string): Promise<WriterSlot> {
  if (wanted) {
    const lease = await locks.tryAcquire(wanted)
    if (!lease) throw new TaskSyncError('already_exists', `clientId ${wanted} is in use by another live client of this storage: a clientId names one writer`)
    return settle(root, locks, wanted, lease)
  }
  for (const id of slotsIn(await root.load()).keys()) {
    const lease = await locks.tryAcquire(id)
    if (lease) return settle(root, locks, id, lease)
  }
  const id = newId()
  const lease = await locks.tryAcquire(id)
  if (!lease) throw new TaskSyncError('internal', `the lock of a new writer ${id} is held`)
  return settle(root, locks, id, lease)
}

async function settle(root: ClientStorage, locks: WriterLocks, clientId: string, lease: WriterLease): Promise<WriterSlot> {
  try {
    const stored = await moveLegacy(root, await root.load(), clientId)
    const slots = slotsIn(stored)
    const created = !slots.has(clientId)
    if (created) await root.save(seedSlot(slots, clientId))
    locks.announce(clientId)
    return { clientId, lease, created }
  } catch (err) {
    await lease.release()
    throw err
  }
}

/** A new slot: its meta, and the freshest confirmed snapshot of every task the other slots hold (so a new tab shows them offline). */
function seedSlot(slots: Map<string, Record<string, unknown>>, clientId: string): StorageChanges {
  const tasks = new Map<string, StoredTask>()
  let deviceId: string | undefined
  for (const slot of slots.values()) {
    deviceId ??= (slot.meta as StoredMeta).deviceId
    for (const [key, value] of Object.entries(slot)) {
      if (!key.startsWith('task:') || !value) continue
      const t = value as StoredTask
      // A task whose creation is not acknowledged yet is that writer's to create.
      if (t.base.rev === 0) continue
      const have = tasks.get(t.id)
      if (!have || have.base.rev < t.base.rev) tasks.set(t.id, { id: t.id, base: t.base, inflight: null, pending: null, pendingCount: 0 })
    }
  }
  const meta: StoredMeta = { clientId, seq: 0, ...(deviceId ? { deviceId } : {}) }
  const out: StorageChanges = { [slotKey(clientId, 'meta')]: meta }
  for (const t of tasks.values()) out[slotKey(clientId, `task:${t.id}`)] = t
  return out
}
