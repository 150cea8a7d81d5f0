/**
 * The drizzle schema of tasksync. Every entity is keyed by (orgId, id): ids are
 * chosen by clients, and the same id in another organization must neither
 * conflict nor reveal anything (PROTOCOL.md section 1).
 */
import { sql } from 'drizzle-orm'
import {
  bigint,
  bigserial,
  customType,
  boolean,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uniqueIndex,
  uuid,
} from 'drizzle-orm/pg-core'
import type { JsonValue, TaskContent, TaskOp } from '../domain/types.js'

const ts = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' })
const createdAt = () => ts('created_at').notNull().defaultNow()

/**
 * The PostgreSQL transaction id (xid8) that last changed a row. Pull cursors are
 * pg_snapshots: a row changed after a cursor is one whose change_xid the cursor's
 * snapshot cannot see, so a transaction that commits late is never skipped.
 * Set by a trigger on insert and update (migration 0001).
 */
const xid8 = customType<{ data: string; driverData: string }>({ dataType: () => 'xid8' })
const changeXid = () => xid8('change_xid').notNull().default(sql`pg_current_xact_id()`)

/** A text search configuration name (`simple`, `english`, …): what to_tsvector takes. */
const regconfig = customType<{ data: string; driverData: string }>({ dataType: () => 'regconfig' })
const tsvector = customType<{ data: string; driverData: string }>({ dataType: () => 'tsvector' })

export const organizations = pgTable(
  'organizations',
  {
    id: uuid('id').primaryKey(),
    name: text('name').notNull(),
    /** The text search configuration of the org's task search (validated against pg_ts_config when set). */
    searchLanguage: text('search_language').notNull().default('simple'),
    createdAt: createdAt(),
    /** Provisioned from an identity provider's token: its issuer and the token's organization claim; null for built-in ones. */
    issuer: text('issuer'),
    externalId: text('external_id'),
  },
  (t) => [uniqueIndex('organizations_external_key').on(t.issuer, t.externalId)],
)

export const users = pgTable(
  'users',
  {
    orgId: uuid('org_id').notNull().references(() => organizations.id, { onDelete: 'cascade' }),
    id: uuid('id').notNull(),
    email: text('email').notNull(),
    displayName: text('display_name').notNull(),
    passwordHash: text('password_hash').notNull(),
    role: text('role').$type<'owner' | 'admin' | 'member' | 'viewer'>().notNull(),
    createdAt: createdAt(),
    /** Set when an owner or admin removed the user: no login, devices revoked; their history stays. */
    deactivatedAt: timestamp('deactivated_at', { withTimezone: true }),
    /** Provisioned from an identity provider's token: its issuer and `sub`; null for built-in users (who have a password). */
    issuer: text('issuer'),
    subject: text('subject'),
    /** `iat` of the token the profile (role, name, email) was last taken from: an older token never overwrites a newer one. */
    profileIat: bigint('profile_iat', { mode: 'number' }),
  },
  (t) => [
    primaryKey({ columns: [t.orgId, t.id] }),
    // Login is by email alone, so an email identifies one built-in user across the server.
    // External users sign in at their identity provider: their emails may repeat.
    uniqueIndex('users_email_key').on(sql`lower(${t.email})`).where(sql`${t.issuer} is null`),
    uniqueIndex('users_external_key').on(t.orgId, t.issuer, t.subject),
  ],
)

export const devices = pgTable(
  'devices',
  {
    orgId: uuid('org_id').notNull(),
    id: uuid('id').notNull(),
    userId: uuid('user_id').notNull(),
    name: text('name').notNull(),
    platform: text('platform').notNull(),
    createdAt: createdAt(),
    lastSeenAt: ts('last_seen_at'),
    revokedAt: ts('revoked_at'),
    /** The device key an external token came with (X-Device-Key, `device_key`); null for built-in devices. */
    deviceKey: text('device_key'),
  },
  (t) => [
    primaryKey({ columns: [t.orgId, t.id] }),
    index('devices_user_idx').on(t.orgId, t.userId),
    uniqueIndex('devices_key_key').on(t.orgId, t.userId, t.deviceKey),
  ],
)

/** Refresh tokens, stored as hashes; a family is one login, revoked whole on reuse. */
export const refreshTokens = pgTable(
  'refresh_tokens',
  {
    id: uuid('id').primaryKey(),
    orgId: uuid('org_id').notNull(),
    userId: uuid('user_id').notNull(),
    deviceId: uuid('device_id').notNull(),
    familyId: uuid('family_id').notNull(),
    tokenHash: text('token_hash').notNull(),
    createdAt: createdAt(),
    expiresAt: ts('expires_at').notNull(),
    spentAt: ts('spent_at'),
    revokedAt: ts('revoked_at'),
  },
  (t) => [
    uniqueIndex('refresh_tokens_hash_key').on(t.tokenHash),
    index('refresh_tokens_family_idx').on(t.familyId),
    index('refresh_tokens_device_idx').on(t.orgId, t.deviceId),
  ],
)

export const projects = pgTable(
  'projects',
  {
    orgId: uuid('org_id').notNull(),
    id: uuid('id').notNull(),
    name: text('name').notNull(),
    createdBy: uuid('created_by').notNull(),
    createdAt: createdAt(),
    updatedAt: ts('updated_at').notNull().defaultNow(),
    archivedAt: ts('archived_at'),
  },
  (t) => [primaryKey({ columns: [t.orgId, t.id] })],
)

/**
 * A task's latest snapshot. `content` is the op type's TaskContent; status,
 * assignee, project, priority and deleted are copied out for filters and indexes.
 */
export const tasks = pgTable(
  'tasks',
  {
    orgId: uuid('org_id').notNull(),
    id: uuid('id').notNull(),
    rev: integer('rev').notNull(),
    content: jsonb('content').$type<TaskContent>().notNull(),
    clock: jsonb('clock').$type<Record<string, number>>().notNull(),
    projectId: uuid('project_id'),
    status: text('status').notNull(),
    priority: integer('priority').notNull(),
    assigneeId: uuid('assignee_id'),
    deleted: boolean('deleted').notNull().default(false),
    createdAt: createdAt(),
    createdBy: uuid('created_by').notNull(),
    updatedAt: ts('updated_at').notNull().defaultNow(),
    updatedBy: uuid('updated_by').notNull(),
    /** The org's search language, copied on insert by a trigger (migration search_sql) and when the org changes it. */
    searchLanguage: regconfig('search_language').notNull().default(sql`'simple'::regconfig`),
    /**
     * Full-text document: title (weight A), tags (B), description (C), as of the last
     * re-index (search-index.ts `searchVector`). A commit does not compute it: it puts
     * the task in task_search_stale, and the search indexer re-computes stale rows in batches.
     */
    search: tsvector('search').notNull().default(sql`''::tsvector`),
    /**
     * The title and tags part of `search` (the same words, weights and positions): its
     * small GIN index finds the head tier of a search, ranked before description-only hits,
     * so a broad query ranks a few thousand rows instead of every match (task-search.ts).
     */
    searchHead: tsvector('search_head').notNull().default(sql`''::tsvector`),
  },
  (t) => [
    primaryKey({ columns: [t.orgId, t.id] }),
    index('tasks_search_idx').using('gin', t.search),
    index('tasks_search_head_idx').using('gin', t.searchHead),
    index('tasks_project_idx').on(t.orgId, t.projectId, t.id),
    index('tasks_status_idx').on(t.orgId, t.status, t.id),
    index('tasks_assignee_idx').on(t.orgId, t.assigneeId, t.id),
  ],
)

/**
 * The transaction that last changed each task (pull's cursor: PROTOCOL.md section 7), beside
 * the task row rather than on it: every commit moves it, and an indexed column of `tasks` that
 * every commit changes would make every update of that wide, many-indexed row a non-HOT one
 * (a new entry in each of its indexes). Written by the commit statements (tasks-commit.ts)
 * in the same statement as the row, under its row lock; removed with the task by housekeeping.
 */
export const taskChanges = pgTable(
  'task_changes',
  {
    orgId: uuid('org_id').notNull(),
    taskId: uuid('task_id').notNull(),
    changeXid: changeXid(),
  },
  (t) => [
    primaryKey({ columns: [t.orgId, t.taskId] }),
    // With task_id, a page's (change_xid, task_id) > cursor bound and its order are the index's: a seek, not a sort of every row of the xid.
    index('task_changes_xid_idx').on(t.orgId, t.changeXid, t.taskId),
  ],
)

/**
 * The tasks whose content changed since their search vectors were computed: search
 * computes their vectors from the content (read-your-writes) until the search indexer
 * re-indexes them and removes them from here. A commit inserts its task `on conflict do
 * nothing`, so the repeated edits of a task between two indexer rounds write nothing
 * here and change no indexed column of `tasks`.
 */
export const taskSearchStale = pgTable(
  'task_search_stale',
  {
    orgId: uuid('org_id').notNull(),
    taskId: uuid('task_id').notNull(),
  },
  (t) => [primaryKey({ columns: [t.orgId, t.taskId] })],
)

/** The per-task op log: one row per committed rev, rev 1 is the creation. */
export const taskOps = pgTable(
  'task_ops',
  {
    orgId: uuid('org_id').notNull(),
    taskId: uuid('task_id').notNull(),
    rev: integer('rev').notNull(),
    op: jsonb('op').$type<TaskOp>().notNull(),
    userId: uuid('user_id').notNull(),
    deviceId: uuid('device_id').notNull(),
    clientId: uuid('client_id'),
    seq: bigint('seq', { mode: 'number' }),
    committedAt: ts('committed_at').notNull().defaultNow(),
    /**
     * The mutation record of (clientId, seq) lives on its op-log row (kind `create` at rev 1,
     * `op` after): sequencer/digest.ts of the mutation. client_mutations keeps the records
     * without an op-log row (comments, no-op acks, and those of trimmed or purged rows).
     */
    digest: text('digest'),
    /**
     * The history entry of the rev (what changed from what to what). Null on rows whose
     * entry is in task_history (written before migration 0017, e.g. seed data): the two
     * never both hold a rev, and trimming moves an entry to task_history.
     */
    changes: jsonb('changes').$type<Record<string, { from?: JsonValue; to?: JsonValue }>>(),
    /** The committing transaction: pull's `lastSeq` counts only what its snapshot can see. */
    changeXid: changeXid(),
  },
  (t) => [
    primaryKey({ columns: [t.orgId, t.taskId, t.rev] }),
    // (clientId, seq) identifies one mutation forever (with client_mutations: a record is in one of the two).
    uniqueIndex('task_ops_client_seq_key').on(t.orgId, t.clientId, t.seq).where(sql`client_id is not null`),
    // The dashboard's per-day series reads an organization's last 30 days of history.
    index('task_ops_org_at_idx').on(t.orgId, t.committedAt),
  ],
)

/** A clientId is bound to the device (and user, org) that first used it. */
/** A clientId is scoped to its organization: the same UUID in another one is another client (PROTOCOL.md section 3). */
export const clients = pgTable(
  'clients',
  {
    clientId: uuid('client_id').notNull(),
    orgId: uuid('org_id').notNull(),
    userId: uuid('user_id').notNull(),
    deviceId: uuid('device_id').notNull(),
    createdAt: createdAt(),
  },
  (t) => [primaryKey({ columns: [t.orgId, t.clientId] })],
)

/**
 * The per-client mutation records that make (clientId, seq) idempotent, for those
 * without an op-log row: comments, no-op acks, and the records of op-log rows
 * housekeeping trimmed or purged (moved here in the same transaction).
 */
export const clientMutations = pgTable(
  'client_mutations',
  {
    clientId: uuid('client_id').notNull(),
    seq: bigint('seq', { mode: 'number' }).notNull(),
    orgId: uuid('org_id').notNull(),
    kind: text('kind').$type<'create' | 'op' | 'comment'>().notNull(),
    taskId: uuid('task_id').notNull(),
    rev: integer('rev'),
    commentId: uuid('comment_id'),
    /** sequencer/digest.ts of the mutation: a different mutation under this (clientId, seq) is not a resend. Null on records older than it. */
    digest: text('digest'),
    committedAt: ts('committed_at').notNull().defaultNow(),
    /** The committing transaction: pull's `lastSeq` counts only what its snapshot can see. */
    changeXid: changeXid(),
  },
  (t) => [primaryKey({ columns: [t.orgId, t.clientId, t.seq] })],
)

export const comments = pgTable(
  'comments',
  {
    orgId: uuid('org_id').notNull(),
    id: uuid('id').notNull(),
    taskId: uuid('task_id').notNull(),
    parentId: uuid('parent_id'),
    authorId: uuid('author_id').notNull(),
    body: text('body').notNull(),
    createdAt: createdAt(),
    editedAt: ts('edited_at'),
    editCount: integer('edit_count').notNull().default(0),
    deleted: boolean('deleted').notNull().default(false),
    updatedAt: ts('updated_at').notNull().defaultNow(),
    changeXid: changeXid(),
  },
  (t) => [
    primaryKey({ columns: [t.orgId, t.id] }),
    index('comments_change_idx').on(t.orgId, t.changeXid, t.id),
    index('comments_task_idx').on(t.orgId, t.taskId, t.createdAt)],
)

/** Human-readable history: one row per committed rev, what changed from what to what. */
/**
 * Snapshots of a task at a rev, written when housekeeping trims the op log
 * past that rev: time travel replays from the nearest one at or below a rev.
 */
export const taskCheckpoints = pgTable(
  'task_checkpoints',
  {
    orgId: uuid('org_id').notNull(),
    taskId: uuid('task_id').notNull(),
    rev: integer('rev').notNull(),
    content: jsonb('content').$type<TaskContent>().notNull(),
    clock: jsonb('clock').$type<Record<string, number>>().notNull(),
    updatedAt: ts('updated_at').notNull(),
    updatedBy: uuid('updated_by').notNull(),
  },
  (t) => [primaryKey({ columns: [t.orgId, t.taskId, t.rev] })],
)

/**
 * History entries not on their op-log row: those written before migration 0017 and
 * those of trimmed or purged op-log rows (moved here in the same transaction).
 */
export const taskHistory = pgTable(
  'task_history',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    orgId: uuid('org_id').notNull(),
    taskId: uuid('task_id').notNull(),
    rev: integer('rev').notNull(),
    userId: uuid('user_id').notNull(),
    deviceId: uuid('device_id').notNull(),
    changes: jsonb('changes').$type<Record<string, { from?: JsonValue; to?: JsonValue }>>().notNull(),
    at: ts('at').notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex('task_history_task_rev_key').on(t.orgId, t.taskId, t.rev),
    // The dashboard's per-day series reads an organization's last 30 days.
    index('task_history_org_at_idx').on(t.orgId, t.at),
  ],
)

/** What a person must settle: recorded by the sequencer, resolved through an op. */
export const conflicts = pgTable(
  'conflicts',
  {
    orgId: uuid('org_id').notNull(),
    id: uuid('id').notNull(),
    taskId: uuid('task_id').notNull(),
    field: text('field').$type<'status' | 'assigneeId'>().notNull(),
    committedValue: jsonb('committed_value').$type<JsonValue>(),
    incomingValue: jsonb('incoming_value').$type<JsonValue>(),
    committedRev: integer('committed_rev').notNull(),
    incomingRev: integer('incoming_rev').notNull(),
    incomingUserId: uuid('incoming_user_id').notNull(),
    status: text('status').$type<'open' | 'resolved'>().notNull().default('open'),
    resolution: jsonb('resolution').$type<JsonValue>(),
    resolvedBy: uuid('resolved_by'),
    resolvedAt: ts('resolved_at'),
    resolvedRev: integer('resolved_rev'),
    createdAt: createdAt(),
  },
  (t) => [primaryKey({ columns: [t.orgId, t.id] }), index('conflicts_open_idx').on(t.orgId, t.status, t.createdAt)],
)

/** Deletions, kept until the tombstone horizon so an offline device learns of them. */
export const tombstones = pgTable(
  'tombstones',
  {
    orgId: uuid('org_id').notNull(),
    kind: text('kind').$type<'task' | 'comment' | 'attachment'>().notNull(),
    id: uuid('id').notNull(),
    taskId: uuid('task_id'),
    rev: integer('rev'),
    deletedAt: ts('deleted_at').notNull().defaultNow(),
    changeXid: changeXid(),
  },
  (t) => [
    primaryKey({ columns: [t.orgId, t.kind, t.id] }),
    index('tombstones_deleted_idx').on(t.deletedAt),
    index('tombstones_change_idx').on(t.orgId, t.changeXid),
  ],
)

/** One row per push, pull or socket resume: who, how much, how long. */
export const syncLog = pgTable(
  'sync_log',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    orgId: uuid('org_id').notNull(),
    userId: uuid('user_id').notNull(),
    deviceId: uuid('device_id').notNull(),
    clientId: uuid('client_id'),
    kind: text('kind').$type<'push' | 'pull' | 'resume'>().notNull(),
    counts: jsonb('counts').$type<Record<string, number>>().notNull(),
    durationMs: integer('duration_ms').notNull(),
    at: ts('at').notNull().defaultNow(),
  },
  (t) => [index('sync_log_org_idx').on(t.orgId, t.at)],
)

/** Server-wide sync state: the tombstone horizon (cursors older than it answer reset). */
export const syncState = pgTable('sync_state', {
  key: text('key').primaryKey(),
  /** xid8 of the horizon: a cursor whose snapshot xmax is at or below it is too old. */
  horizonXid: xid8('horizon_xid'),
  horizonAt: ts('horizon_at'),
  /** Other state under its key (e.g. housekeeping's last run). */
  value: jsonb('value').$type<JsonValue>(),
})

/**
 * Files attached to tasks. A row is written when an upload opens (`state`
 * 'uploading', its size reserved against the organization's quota), turns 'ready'
 * when the complete bytes are verified, and 'deleted' (a tombstone) when removed.
 */
export const attachments = pgTable(
  'attachments',
  {
    orgId: uuid('org_id').notNull(),
    id: uuid('id').notNull(),
    taskId: uuid('task_id').notNull(),
    name: text('name').notNull(),
    contentType: text('content_type').notNull(),
    size: bigint('size', { mode: 'number' }).notNull(),
    sha256: text('sha256').notNull(),
    chunkSize: integer('chunk_size').notNull(),
    state: text('state').$type<'uploading' | 'ready' | 'deleted'>().notNull().default('uploading'),
    /** The blob store's id of the multipart upload in progress (S3), or null. */
    uploadId: text('upload_id'),
    /** Content type of the thumbnail stored beside the file, when one was made. */
    thumbnail: text('thumbnail'),
    createdBy: uuid('created_by').notNull(),
    createdAt: createdAt(),
    completedAt: ts('completed_at'),
    /** An upload still 'uploading' after this is expired and its bytes reclaimed. */
    expiresAt: ts('expires_at').notNull(),
    updatedAt: ts('updated_at').notNull().defaultNow(),
    changeXid: changeXid(),
  },
  (t) => [
    primaryKey({ columns: [t.orgId, t.id] }),
    index('attachments_task_idx').on(t.orgId, t.taskId, t.createdAt),
    index('attachments_change_idx').on(t.orgId, t.changeXid),
    index('attachments_expiry_idx').on(t.expiresAt).where(sql`state = 'uploading'`),
  ],
)

/** The chunks of an upload the server has stored: the hash decides whether a resent chunk is the same. */
export const attachmentChunks = pgTable(
  'attachment_chunks',
  {
    orgId: uuid('org_id').notNull(),
    attachmentId: uuid('attachment_id').notNull(),
    n: integer('n').notNull(),
    size: integer('size').notNull(),
    sha256: text('sha256').notNull(),
    /** The blob store's tag of the stored part (S3 ETag). */
    etag: text('etag'),
  },
  (t) => [primaryKey({ columns: [t.orgId, t.attachmentId, t.n] })],
)

/**
 * Storage of each organization: bytes reserved by open uploads and stored files
 * together, and the owner's quota (null: ORG_STORAGE_QUOTA_BYTES). A reservation is
 * one conditional UPDATE of this row, so racing uploads on any instance cannot both pass.
 */
export const orgStorage = pgTable('org_storage', {
  orgId: uuid('org_id').primaryKey(),
  usedBytes: bigint('used_bytes', { mode: 'number' }).notNull().default(0),
  quotaBytes: bigint('quota_bytes', { mode: 'number' }),
})

/**
 * What happened to a task's attachments, for its history: each event hangs on
 * the task's rev at the time (the history entry of that rev lists it).
 */
export const attachmentHistory = pgTable(
  'attachment_history',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    orgId: uuid('org_id').notNull(),
    taskId: uuid('task_id').notNull(),
    rev: integer('rev').notNull(),
    attachmentId: uuid('attachment_id').notNull(),
    action: text('action').$type<'attached' | 'removed'>().notNull(),
    name: text('name').notNull(),
    size: bigint('size', { mode: 'number' }).notNull(),
    userId: uuid('user_id').notNull(),
    deviceId: uuid('device_id').notNull(),
    at: ts('at').notNull().defaultNow(),
  },
  (t) => [index('attachment_history_task_idx').on(t.orgId, t.taskId, t.rev)],
)

/**
 * The transactional outbox: one row per event, written in the same transaction as
 * the change it tells of (a rolled-back change leaves no row). `seq` orders them;
 * `id` is the webhook-id receivers deduplicate on. A row is written once: fan-out
 * into webhook deliveries and notifications moves a cursor (`event_fanout_cursor`)
 * over (xid, seq) instead of marking rows; kept until EVENT_RETENTION_DAYS.
 */
export const events = pgTable(
  'events',
  {
    seq: bigserial('seq', { mode: 'number' }).primaryKey(),
    id: uuid('id').notNull().default(sql`gen_random_uuid()`),
    orgId: uuid('org_id').notNull(),
    type: text('type').notNull(),
    taskId: uuid('task_id'),
    rev: integer('rev'),
    actorId: uuid('actor_id'),
    at: ts('at').notNull().defaultNow(),
    change: jsonb('change').$type<JsonValue>().notNull(),
    /**
     * The writing transaction: fan-out takes events in (xid, seq) order up to the
     * oldest write transaction of this database still open, so a transaction that
     * commits late is never passed by the cursor.
     */
    xid: xid8('xid').notNull().default(sql`pg_current_xact_id()`),
  },
  (t) => [
    uniqueIndex('events_id_key').on(t.id),
    index('events_fanout_idx').on(t.xid, t.seq),
    index('events_at_idx').on(t.at),
  ],
)

/** Where fan-out stands (one row): every event at or before (xid, seq) has been fanned out. */
export const eventFanoutCursor = pgTable('event_fanout_cursor', {
  id: integer('id').primaryKey(),
  xid: xid8('xid').notNull(),
  seq: bigint('seq', { mode: 'number' }).notNull(),
})

/** A receiver of an organization's events (Standard Webhooks). */
export const webhookEndpoints = pgTable(
  'webhook_endpoints',
  {
    orgId: uuid('org_id').notNull(),
    id: uuid('id').notNull(),
    url: text('url').notNull(),
    /** Event types, or ['*'] for every one. */
    events: jsonb('events').$type<string[]>().notNull(),
    /** `whsec_…` (base64 key), as the Standard Webhooks libraries take it. */
    secret: text('secret').notNull(),
    active: boolean('active').notNull().default(true),
    /** Set when a delivery ran out of retries; new events wait as dead letters until a redeliver. */
    failingSince: ts('failing_since'),
    createdAt: createdAt(),
    updatedAt: ts('updated_at').notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.orgId, t.id] })],
)

/** One event for one endpoint: pending (maybe leased by a dispatcher), delivered or dead. */
export const webhookDeliveries = pgTable(
  'webhook_deliveries',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    orgId: uuid('org_id').notNull(),
    endpointId: uuid('endpoint_id').notNull(),
    eventSeq: bigint('event_seq', { mode: 'number' }).notNull(),
    /** The event's task, or the event id when it has none: deliveries of one key go in seq order. */
    orderKey: uuid('order_key').notNull(),
    state: text('state').$type<'pending' | 'delivered' | 'dead'>().notNull().default('pending'),
    attempts: integer('attempts').notNull().default(0),
    nextAt: ts('next_at').notNull().defaultNow(),
    leaseUntil: ts('lease_until'),
    lastStatus: integer('last_status'),
    lastError: text('last_error'),
    lastLatencyMs: integer('last_latency_ms'),
    createdAt: createdAt(),
    /** Start of the retry window (reset by a redeliver). */
    windowStart: ts('window_start').notNull().defaultNow(),
    deliveredAt: ts('delivered_at'),
  },
  (t) => [
    index('webhook_deliveries_order_idx').on(t.endpointId, t.orderKey, t.eventSeq).where(sql`state = 'pending'`),
    index('webhook_deliveries_endpoint_idx').on(t.orgId, t.endpointId, t.id),
    // /metrics counts dead letters through it: few rows, never touched by a delivery that succeeds.
    index('webhook_deliveries_dead_idx').on(t.orgId).where(sql`state = 'dead'`),
  ],
)

/** What a person is told in the app (and by mail, per their preferences). */
export const notifications = pgTable(
  'notifications',
  {
    orgId: uuid('org_id').notNull(),
    id: uuid('id').notNull().default(sql`gen_random_uuid()`),
    userId: uuid('user_id').notNull(),
    kind: text('kind').$type<'assigned' | 'mentioned' | 'commented' | 'due_soon' | 'overdue'>().notNull(),
    eventId: uuid('event_id').notNull(),
    taskId: uuid('task_id'),
    title: text('title').notNull(),
    createdAt: createdAt(),
    readAt: ts('read_at'),
    /** none: no mail; pending: to mail now; digest: waits for the daily digest; sent. */
    mail: text('mail').$type<'none' | 'pending' | 'digest' | 'sent'>().notNull(),
    mailLeaseUntil: ts('mail_lease_until'),
  },
  (t) => [
    primaryKey({ columns: [t.orgId, t.id] }),
    uniqueIndex('notifications_event_key').on(t.userId, t.eventId, t.kind),
    index('notifications_user_idx').on(t.orgId, t.userId, t.createdAt),
    index('notifications_mail_idx').on(t.mail).where(sql`mail in ('pending', 'digest')`),
  ],
)

/** Per-user notification settings: mail per kind, time zone, the day of the last digest. */
export const notificationSettings = pgTable(
  'notification_settings',
  {
    orgId: uuid('org_id').notNull(),
    userId: uuid('user_id').notNull(),
    timeZone: text('time_zone').notNull().default('UTC'),
    /** kind → 'immediately' | 'digest' | 'off'; a missing kind is 'immediately'. */
    prefs: jsonb('prefs').$type<Record<string, string>>().notNull().default({}),
    lastDigestOn: text('last_digest_on'),
  },
  (t) => [primaryKey({ columns: [t.orgId, t.userId] })],
)

/** Due-date alerts already emitted: once per task, due date and kind, whichever instance finds it. */
export const dueAlerts = pgTable(
  'due_alerts',
  {
    orgId: uuid('org_id').notNull(),
    taskId: uuid('task_id').notNull(),
    dueAt: ts('due_at').notNull(),
    kind: text('kind').$type<'due_soon' | 'overdue'>().notNull(),
    createdAt: createdAt(),
  },
  (t) => [primaryKey({ columns: [t.orgId, t.taskId, t.kind, t.dueAt] })],
)
