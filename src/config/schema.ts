/**
 * Every environment variable tasksync reads, in one TypeBox schema. Values come
 * in as strings and are converted before validation (see load.ts).
 */
import { Type, type Static } from 'typebox'

const Int = (def: number, min = 0, max = Number.MAX_SAFE_INTEGER) => Type.Integer({ default: def, minimum: min, maximum: max })

export const ConfigSchema = Type.Object({
  NODE_ENV: Type.Union([Type.Literal('development'), Type.Literal('production'), Type.Literal('test')], { default: 'development' }),
  PORT: Int(3000, 0, 65535),
  HOST: Type.String({ default: '127.0.0.1' }),
  /**
   * Connections the kernel queues for this listener before it drops new ones (capped by
   * net.core.somaxconn). Node takes one connection from the queue per event-loop turn: a
   * reconnect storm arrives faster than a busy instance takes it, and a dropped SYN costs the
   * client TCP's 1, 3, 7, 15, 31 s retransmissions.
   */
  LISTEN_BACKLOG: Int(4096, 1, 65535),
  /** postgres://… ; absent: embedded PGlite under DATA_DIR. */
  DATABASE_URL: Type.Optional(Type.String({ pattern: '^postgres(ql)?://' })),
  /** Max connections of this instance's PostgreSQL pool. */
  DATABASE_POOL_SIZE: Int(10, 1, 200),
  /** How long a new PostgreSQL connection may take to hear from the server before it counts as failed (and opens the breaker). */
  DATABASE_CONNECT_TIMEOUT_MS: Int(1000, 50, 60_000),
  /** How long a starting instance waits for PostgreSQL and Redis to accept connections (they may start after it) before it gives up; 0: no wait. */
  STARTUP_WAIT_MS: Int(30_000, 0, 600_000),
  /** redis://… ; absent: in-process bus (one instance only). */
  REDIS_URL: Type.Optional(Type.String({ pattern: '^rediss?://' })),
  /** Prefix of every Redis channel and key, so several deployments (or test runs) share one Redis. */
  REDIS_PREFIX: Type.String({ default: 'tasksync:' }),
  /** Shared HMAC secret (HS256) for access tokens; every instance must have the same one. */
  JWT_SECRET: Type.Optional(Type.String({ minLength: 32 })),
  /** PEM PKCS#8 private key (EdDSA/ES256/RS256); its public half is served at /.well-known/jwks.json. */
  JWT_PRIVATE_KEY: Type.Optional(Type.String({ minLength: 1 })),
  ACCESS_TOKEN_TTL_S: Int(900, 10, 86_400),
  /** Seconds a token's iat or nbf may lie in the future (clocks of instances differ a little). */
  JWT_CLOCK_SKEW_S: Int(30, 0, 300),
  REFRESH_TOKEN_TTL_S: Int(30 * 86_400, 60, 365 * 86_400),
  DATA_DIR: Type.String({ default: './data' }),
  /** `pretty` (human-readable lines) or `json`; absent: pretty in development, JSON otherwise. */
  LOG_FORMAT: Type.Optional(Type.Union([Type.Literal('pretty'), Type.Literal('json')])),
  /** Serve the web app (dist/web) at `/`; `false` leaves only the API. */
  WEB_APP: Type.Union([Type.Literal('true'), Type.Literal('false')], { default: 'true' }),
  LOG_LEVEL: Type.Union(
    ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
    { default: 'info' },
  ),
  /** Instance id used in /api/health, welcome and to ignore own bus echoes; random when absent. */
  INSTANCE_ID: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
  /** Ops kept replayable per task for `since` resume; older gaps answer snapshot/sync_required. */
  REPLAY_WINDOW_OPS: Int(1000, 10),
  /**
   * Revs an op may be behind and still be transformed, while the op log holds them
   * (never fewer than REPLAY_WINDOW_OPS); further behind is `rev_too_old`.
   */
  SYNC_TRANSFORM_WINDOW_OPS: Int(4000, 10),
  /** Days a deletion tombstone is kept (the tombstone horizon). */
  TOMBSTONE_TTL_DAYS: Int(90, 1),
  /** Seconds between housekeeping runs (0 disables the in-server schedule). */
  HOUSEKEEPING_INTERVAL_S: Int(3600, 0),
  /** Days a sync log entry (push, pull, resume) is kept. */
  SYNC_LOG_TTL_DAYS: Int(30, 1),
  WS_MAX_MESSAGE_BYTES: Int(256 * 1024, 1024),
  WS_MAX_BUFFERED_BYTES: Int(1024 * 1024, 1024),
  WS_RATE_PER_S: Int(100, 1),
  WS_RATE_BURST: Int(200, 1),
  WS_HEARTBEAT_MS: Int(25_000, 100),
  WS_HELLO_TIMEOUT_MS: Int(10_000, 100),
  WS_MAX_SOCKETS: Int(20_000, 1),
  /** Milliseconds between probes of the latest rev of followed tasks (repairs a lost last publication). */
  WS_PROBE_MS: Int(5000, 50),
  /** A presence not refreshed for this long is cleared for everyone. */
  WS_PRESENCE_TTL_MS: Int(30_000, 100),
  /** A socket whose close handshake (e.g. a 4009 cut) has not finished this long after the close was queued is destroyed. */
  WS_CLOSE_TIMEOUT_MS: Int(30_000, 100),
  /** Milliseconds SIGTERM waits for begun commits before closing sockets. */
  SHUTDOWN_TIMEOUT_MS: Int(10_000, 100),
  AUTH_RATE_LIMIT_PER_MIN: Int(30, 1),
  /** Failed logins of one account (any address, 15 min) after which each failure locks it briefly. */
  LOGIN_ACCOUNT_MAX_FAILURES: Int(10, 1),
  /** Longest lock of an account after failed logins (the owner's known devices are never locked). */
  LOGIN_ACCOUNT_LOCK_MAX_S: Int(60, 1, 3600),
  /** log2 of the scrypt cost N for password hashes (memory ≈ 128·2^N·8 bytes: 15 → 32 MiB). */
  SCRYPT_LOG_N: Int(15, 10, 20),
  /** Milliseconds a client has to send a request's head (then 408 and close; slow-header attacks). */
  HTTP_HEADERS_TIMEOUT_MS: Int(20_000, 100, 600_000),
  /** Milliseconds a client has to send a whole request, body included (then 408 and close); also bounds a WebSocket upgrade. */
  HTTP_REQUEST_TIMEOUT_MS: Int(60_000, 100, 3_600_000),
  /** Milliseconds an idle keep-alive connection is kept open between requests (above a balancer's idle timeout). */
  HTTP_IDLE_TIMEOUT_MS: Int(72_000, 100, 3_600_000),
  /** Largest accepted REST request body in bytes (sync push has its own limit). */
  HTTP_BODY_LIMIT_BYTES: Int(1024 * 1024, 1024),
  /**
   * Origins a browser may open WebSockets from (`*` or a comma-separated list), against
   * cross-site WebSocket hijacking. Default: the CORS_ORIGIN list in production, `*` elsewhere.
   */
  WS_ALLOWED_ORIGINS: Type.Optional(Type.String({ minLength: 1 })),
  /** Allowed CORS origins: `*` or a comma-separated list of origins. */
  CORS_ORIGIN: Type.String({ default: '*' }),
  /** Behind a proxy: `true` or comma-separated proxy addresses/CIDRs to trust for X-Forwarded-For (client IPs for rate limits). */
  TRUST_PROXY: Type.Optional(Type.String({ minLength: 1 })),
  LIMIT_TITLE: Int(1000, 1),
  LIMIT_DESCRIPTION: Int(100_000, 1),
  LIMIT_TAGS: Int(50, 1),
  LIMIT_TAG_LENGTH: Int(64, 1),
  LIMIT_CUSTOM_FIELDS: Int(64, 1),
  LIMIT_CUSTOM_FIELD_BYTES: Int(32 * 1024, 16),
  LIMIT_COMMENT_BODY: Int(20_000, 1),
  SYNC_PUSH_MAX_MUTATIONS: Int(500, 1),
  SYNC_PUSH_MAX_BYTES: Int(4 * 1024 * 1024, 1024),
  SYNC_PULL_MAX_LIMIT: Int(1000, 1),
  /** REST catch-up requests (push, pull, op log pages) an instance serves at once; the rest wait their turn (live commits never do). */
  SYNC_CATCHUP_CONCURRENCY: Int(32, 1, 1000),
  /** Catch-up requests that may wait for a turn; past it they answer 503 `unavailable` with Retry-After. */
  SYNC_CATCHUP_MAX_WAITING: Int(5000, 0),
  /** Storage an organization may use for attachments, in bytes (an owner can change it per organization). */
  ORG_STORAGE_QUOTA_BYTES: Int(1024 * 1024 * 1024, 0),
  /** Largest single attachment, in bytes. */
  ATTACHMENT_MAX_BYTES: Int(100 * 1024 * 1024, 1),
  /** Size of an upload chunk the server asks for (S3 needs at least 5 MiB for every part but the last). */
  ATTACHMENT_CHUNK_BYTES: Int(8 * 1024 * 1024, 1024, 512 * 1024 * 1024),
  /** Hours an incomplete upload is kept; then its bytes and its quota reservation are released. */
  UPLOAD_TTL_H: Int(24, 1, 24 * 365),
  /** S3-compatible endpoint (e.g. http://127.0.0.1:9000); absent with S3_BUCKET: AWS itself. */
  S3_ENDPOINT: Type.Optional(Type.String({ pattern: '^https?://' })),
  /** Bucket of attachments; set it to store them in S3 instead of under DATA_DIR/blobs. */
  S3_BUCKET: Type.Optional(Type.String({ minLength: 3, maxLength: 63 })),
  S3_REGION: Type.String({ default: 'us-east-1' }),
  S3_ACCESS_KEY_ID: Type.Optional(Type.String({ minLength: 1 })),
  S3_SECRET_ACCESS_KEY: Type.Optional(Type.String({ minLength: 1 })),
  /** `true` for path-style URLs (MinIO, s3rver, most self-hosted services). */
  S3_FORCE_PATH_STYLE: Type.Union([Type.Literal('true'), Type.Literal('false')], { default: 'false' }),
  /** Seconds a signed download URL is valid; downloads from S3 redirect to one. 0: stream them through the server. */
  S3_SIGNED_URL_TTL_S: Int(300, 0, 7 * 86_400),
  /** `false` turns the built-in accounts off: register, login, refresh and adding password users answer `forbidden`; only the identity provider's tokens are accepted. */
  AUTH_BUILTIN: Type.Union([Type.Literal('true'), Type.Literal('false')], { default: 'true' }),
  /** Bring your own auth: the JWKS URL of the app's identity provider (its access tokens are then accepted). */
  AUTH_JWKS_URL: Type.Optional(Type.String({ pattern: '^https?://' })),
  /** The `iss` the identity provider's tokens carry (required with AUTH_JWKS_URL). */
  AUTH_ISSUER: Type.Optional(Type.String({ minLength: 1 })),
  /** The `aud` tasksync requires in them (comma-separated: any of them; required with AUTH_JWKS_URL). */
  AUTH_AUDIENCE: Type.Optional(Type.String({ minLength: 1 })),
  /** Claim naming the organization (a dotted path reaches into nested claims). */
  AUTH_CLAIM_ORG: Type.String({ default: 'org_id', minLength: 1 }),
  /** Claim naming the role(s): a string or an array of strings. */
  AUTH_CLAIM_ROLE: Type.String({ default: 'role', minLength: 1 }),
  AUTH_CLAIM_NAME: Type.String({ default: 'name', minLength: 1 }),
  AUTH_CLAIM_EMAIL: Type.String({ default: 'email', minLength: 1 }),
  /** The organization of tokens without the org claim (single-tenant apps); absent: such tokens are refused. */
  AUTH_DEFAULT_ORG: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
  /** Identity-provider roles → tasksync roles, `idp=tasksync` pairs separated by commas (e.g. `editor=member,reader=viewer`). */
  AUTH_ROLE_MAP: Type.Optional(Type.String({ minLength: 1 })),
  /** The role of a token whose role claim is absent or maps to no tasksync role; `none` refuses such tokens (403). */
  AUTH_DEFAULT_ROLE: Type.Union(['owner', 'admin', 'member', 'viewer', 'none'].map((r) => Type.Literal(r)), { default: 'member' }),
  /** Seconds the identity provider's keys are cached before they are fetched again (an unknown `kid` refetches sooner). */
  AUTH_JWKS_CACHE_S: Int(600, 1, 86_400),
  /** Seconds between two fetches of the JWKS caused by unknown `kid`s (against floods of made-up kids). */
  AUTH_JWKS_COOLDOWN_S: Int(30, 0, 3600),
  /** SMTP server for notification mails (smtp://user:pass@host:port, smtps://…); absent: mails are written as .eml files under DATA_DIR/mail. */
  SMTP_URL: Type.Optional(Type.String({ pattern: '^smtps?://' })),
  /** From address of notification mails. */
  MAIL_FROM: Type.String({ default: 'tasksync <tasksync@localhost>' }),
  /** Base URL of the web app, for links in mails. */
  PUBLIC_URL: Type.String({ default: 'http://localhost:3000' }),
  /** `true` lets webhooks target private, loopback and link-local addresses (tests, internal receivers). */
  WEBHOOK_ALLOW_PRIVATE: Type.Union([Type.Literal('true'), Type.Literal('false')], { default: 'false' }),
  /** Milliseconds a receiver has to answer a delivery. */
  WEBHOOK_TIMEOUT_MS: Int(10_000, 100, 60_000),
  /** First retry delay; each retry doubles it (up to an hour), with ±50 % jitter. */
  WEBHOOK_RETRY_BASE_MS: Int(5000, 10, 3_600_000),
  /** How long a delivery is retried before it is a dead letter and its endpoint is marked failing. */
  WEBHOOK_RETRY_WINDOW_S: Int(86_400, 1),
  /** Delivery runs (an endpoint's deliveries of one task, sent in order) in flight per instance, and per endpoint (so a slow receiver never holds them all). */
  WEBHOOK_CONCURRENCY: Int(256, 1, 1000),
  WEBHOOK_ENDPOINT_CONCURRENCY: Int(128, 1, 1000),
  /** Webhook requests in flight per connection to one endpoint (HTTP/1.1 pipelining above 1, while the endpoint answers within 1 s; a task's run still sends one at a time). */
  WEBHOOK_PIPELINING: Int(8, 1, 64),
  /** Milliseconds between outbox polls when idle (a busy dispatcher polls again at once). */
  EVENT_POLL_MS: Int(100, 5, 60_000),
  /** Milliseconds a dispatcher holds a claimed delivery or mail before another instance may take it over. */
  EVENT_LEASE_MS: Int(60_000, 500),
  /** Days a delivered event is kept (housekeeping purges older ones). */
  EVENT_RETENTION_DAYS: Int(7, 1),
  /** Days a notification is kept (read or not, once its mail is settled), and a due-date alert that can no longer fire. */
  NOTIFICATION_RETENTION_DAYS: Int(90, 1),
  /** Seconds between due-date scans (task.due_soon, task.overdue) and digest checks; 0 disables them. */
  DUE_SCAN_INTERVAL_S: Int(60, 0),
  /** `false` keeps this instance out of dispatching (it still writes events). */
  EVENT_DISPATCH: Type.Union([Type.Literal('true'), Type.Literal('false')], { default: 'true' }),
  /**
   * Test-only: a deliberately broken server, so the chaos checker (chaos/) can show it
   * catches each kind of bug. Never set it anywhere else.
   */
  TASKSYNC_FAULT: Type.Optional(Type.Union([Type.Literal('ack-before-commit'), Type.Literal('drop-publication')])),
})

export type RawConfig = Static<typeof ConfigSchema>
