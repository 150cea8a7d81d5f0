/**
 * What the gateway needs from the rest of the server, as interfaces: the core
 * (sessions, feeds, routers) depends on these, never on fastify; plugin.ts
 * plugs the real sequencer, comments, tokens and storage in.
 */
import type { TaskSnapshot } from '../domain/types.js'
import type { OpEvent } from '../protocol/messages.js'
import type { Principal } from '../auth/principal.js'
import type { AttachmentNotice } from '../bus/notices.js'
import type { CommitListener, CommitResult, CreateTaskRequest, SubmitOpRequest } from '../sequencer/requests.js'
import type { CommentCreateRequest, CommentDeleteRequest, CommentEditRequest, CommentListener, CommentResult } from '../comments/types.js'

export interface SequencerPort {
  create(req: CreateTaskRequest): Promise<CommitResult>
  submit(req: SubmitOpRequest): Promise<CommitResult>
  /** The task's latest snapshot from the database (not a cache), or null. */
  snapshot(orgId: string, taskId: string): Promise<TaskSnapshot | null>
  /** The latest snapshots of those of `taskIds` the org has, from the database in one read, by id. */
  snapshots(orgId: string, taskIds: string[]): Promise<Map<string, TaskSnapshot>>
  /** Committed ops with rev ≥ fromRev, ascending, at most `limit`. */
  opsSince(orgId: string, taskId: string, fromRev: number, limit: number): Promise<OpEvent[]>
  bindClient(principal: Principal, clientId: string): Promise<void>
  onCommit(listener: CommitListener): () => void
  /** Stops accepting mutations and waits for begun commits. */
  drain(): Promise<void>
}

export interface CommentsPort {
  create(req: CommentCreateRequest): Promise<CommentResult>
  edit(req: CommentEditRequest): Promise<CommentResult>
  delete(req: CommentDeleteRequest): Promise<CommentResult>
  onComment(listener: CommentListener): () => void
}

export interface AttachmentsPort {
  onAttachment(listener: (notice: AttachmentNotice) => void): () => void
}

export interface VerifiedToken {
  principal: Principal
  /** When the token expires (ms since epoch, a Date, or an ISO string). */
  expiresAt: number | Date | string
  /** The device key an identity provider's token was verified with (kept for in-band `auth`). */
  deviceKey?: string
}

export interface TokenPort {
  /** Throws on an invalid, expired or revoked token; `deviceKey` names the install of an identity provider's token. */
  verifyAccess(token: string, deviceKey?: string): Promise<VerifiedToken>
}

export interface ReadPort {
  /** The latest committed rev of each task that exists (probe for lost last publications). */
  latestRevs(keys: { orgId: string; taskId: string }[]): Promise<{ orgId: string; taskId: string; rev: number }[]>
  projectExists(orgId: string, projectId: string): Promise<boolean>
}

export interface GatewayLogger {
  info(obj: unknown, msg?: string): void
  warn(obj: unknown, msg?: string): void
  error(obj: unknown, msg?: string): void
}

/** Limits and timings (from the configuration; tests shorten them). */
export interface GatewaySettings {
  maxBufferedBytes: number
  ratePerS: number
  rateBurst: number
  heartbeatMs: number
  helloTimeoutMs: number
  maxSockets: number
  replayWindowOps: number
  /** Interval of the probe of latest revs that repairs a lost last publication. */
  probeMs: number
  /** A presence not refreshed for this long is cleared for everyone. */
  presenceTtlMs: number
  /** Test-only (TASKSYNC_FAULT=drop-publication): drop one publication from another instance, and its repair. */
  dropPublication?: boolean
}

export const toMillis = (t: number | Date | string): number => (typeof t === 'number' ? t : new Date(t).getTime())
