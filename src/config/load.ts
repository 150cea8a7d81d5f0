import { randomBytes, randomUUID } from 'node:crypto'
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { Value } from 'typebox/value'
import { ConfigSchema, type RawConfig } from './schema.js'
import { DEFAULT_LIMITS, type TaskLimits } from '../domain/types.js'

/** The validated, frozen configuration of one instance. */
export interface Config extends RawConfig {
  DATA_DIR: string
  INSTANCE_ID: string
  /** The op type's limits, derived from the LIMIT_* variables. */
  limits: TaskLimits
  /** True when JWT_SECRET was generated and stored under DATA_DIR. */
  generatedSecret: boolean
  /** Origins allowed to open a WebSocket ('*': any), from WS_ALLOWED_ORIGINS or its default. */
  wsOrigins: '*' | readonly string[]
  /** Whether the built-in accounts (register, login, refresh, tasksync-signed tokens) are on. */
  builtinAuth: boolean
  /** The app's identity provider whose access tokens are accepted (from the AUTH_* variables), or null. */
  externalAuth: ExternalAuthConfig | null
}

type TasksyncRole = 'owner' | 'admin' | 'member' | 'viewer'

/** Bring-your-own auth, validated: see README "Bring your own auth". */
export interface ExternalAuthConfig {
  jwksUrl: URL
  issuer: string
  audience: readonly string[]
  claims: Readonly<{ org: string; role: string; name: string; email: string }>
  defaultOrg: string | null
  /** Lower-cased identity-provider role → tasksync role (tasksync's own role names map to themselves). */
  roleMap: Readonly<Record<string, TasksyncRole>>
  /** The role of a token with no mapped role; null refuses such tokens. */
  defaultRole: TasksyncRole | null
  jwksCacheMs: number
  jwksCooldownMs: number
}

const TASKSYNC_ROLES: readonly TasksyncRole[] = ['owner', 'admin', 'member', 'viewer']

/** `idp=tasksync,…` → a lower-cased map; names the bad pair. */
function roleMapOf(value: string | undefined): Record<string, TasksyncRole> {
  const map: Record<string, TasksyncRole> = Object.create(null)
  for (const r of TASKSYNC_ROLES) map[r] = r
  for (const pair of (value ?? '').split(',').map((p) => p.trim()).filter(Boolean)) {
    const at = pair.lastIndexOf('=')
    const from = pair.slice(0, at).trim().toLowerCase()
    const to = pair.slice(at + 1).trim().toLowerCase() as TasksyncRole
    if (at <= 0 || !from || !TASKSYNC_ROLES.includes(to)) {
      throw new ConfigError(`AUTH_ROLE_MAP: ${JSON.stringify(pair)} is not idpRole=owner|admin|member|viewer`)
    }
    map[from] = to
  }
  return map
}

function externalAuthOf(raw: RawConfig, production: boolean): ExternalAuthConfig | null {
  if (!raw.AUTH_JWKS_URL) {
    if (raw.AUTH_ISSUER || raw.AUTH_AUDIENCE) throw new ConfigError('AUTH_ISSUER and AUTH_AUDIENCE need AUTH_JWKS_URL')
    return null
  }
  if (!raw.AUTH_ISSUER) throw new ConfigError('AUTH_ISSUER is required with AUTH_JWKS_URL')
  if (!raw.AUTH_AUDIENCE) throw new ConfigError('AUTH_AUDIENCE is required with AUTH_JWKS_URL')
  if (raw.AUTH_ISSUER === 'tasksync') throw new ConfigError('AUTH_ISSUER must not be "tasksync", the issuer of the built-in tokens')
  let jwksUrl: URL
  try {
    jwksUrl = new URL(raw.AUTH_JWKS_URL)
  } catch {
    throw new ConfigError('AUTH_JWKS_URL is not a URL')
  }
  if (production && jwksUrl.protocol !== 'https:') throw new ConfigError('AUTH_JWKS_URL must be https when NODE_ENV=production')
  return Object.freeze({
    jwksUrl,
    issuer: raw.AUTH_ISSUER,
    audience: Object.freeze(raw.AUTH_AUDIENCE.split(',').map((a) => a.trim()).filter(Boolean)),
    claims: Object.freeze({ org: raw.AUTH_CLAIM_ORG, role: raw.AUTH_CLAIM_ROLE, name: raw.AUTH_CLAIM_NAME, email: raw.AUTH_CLAIM_EMAIL }),
    defaultOrg: raw.AUTH_DEFAULT_ORG ?? null,
    roleMap: Object.freeze(roleMapOf(raw.AUTH_ROLE_MAP)),
    defaultRole: raw.AUTH_DEFAULT_ROLE === 'none' ? null : (raw.AUTH_DEFAULT_ROLE as TasksyncRole),
    jwksCacheMs: raw.AUTH_JWKS_CACHE_S * 1000,
    jwksCooldownMs: raw.AUTH_JWKS_COOLDOWN_S * 1000,
  })
}

/** `*` or a comma-separated list → '*' or the origins, normalized as browsers send them. */
function originList(value: string): '*' | readonly string[] {
  if (value.trim() === '*') return '*'
  return Object.freeze(value.split(',').map((o) => o.trim().replace(/\/+$/, '').toLowerCase()).filter(Boolean))
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'ConfigError'
  }
}

/** Converts env strings to the schema's types and validates them; names the bad variable. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Readonly<Config> {
  const props = ConfigSchema.properties as Record<string, { type?: string }>
  const input: Record<string, unknown> = {}
  for (const key of Object.keys(props)) {
    const raw = env[key]
    if (raw === undefined || raw === '') continue
    if (props[key].type === 'integer') {
      if (!/^-?\d+$/.test(raw.trim())) throw new ConfigError(`${key} must be an integer, got ${JSON.stringify(raw)}`)
      input[key] = Number(raw)
    } else input[key] = raw
  }
  const withDefaults = Value.Default(ConfigSchema, input) as Record<string, unknown>
  const errors = [...Value.Errors(ConfigSchema, withDefaults)]
  if (errors.length > 0) {
    const e = errors[0] as { instancePath?: string; message?: string }
    const name = (e.instancePath ?? '').replace(/^\//, '') || 'configuration'
    const shown = name in withDefaults && !/SECRET|KEY|URL/.test(name) ? ` (got ${JSON.stringify(withDefaults[name])})` : ''
    throw new ConfigError(`invalid ${name}: ${e.message ?? 'invalid value'}${shown}`)
  }
  const raw = withDefaults as RawConfig
  const production = raw.NODE_ENV === 'production'
  if (production && !raw.DATABASE_URL) throw new ConfigError('DATABASE_URL is required when NODE_ENV=production')
  const builtinAuth = raw.AUTH_BUILTIN === 'true'
  const externalAuth = externalAuthOf(raw, production)
  if (!builtinAuth && !externalAuth) throw new ConfigError('AUTH_BUILTIN=false needs AUTH_JWKS_URL: nobody could sign in')
  if (production && builtinAuth && !raw.JWT_SECRET && !raw.JWT_PRIVATE_KEY)
    throw new ConfigError('JWT_SECRET or JWT_PRIVATE_KEY is required when NODE_ENV=production')
  if (raw.JWT_SECRET && raw.JWT_PRIVATE_KEY) throw new ConfigError('set either JWT_SECRET or JWT_PRIVATE_KEY, not both')

  const dataDir = resolve(raw.DATA_DIR)
  let secret = raw.JWT_SECRET
  let generatedSecret = false
  if (!secret && !raw.JWT_PRIVATE_KEY) {
    // Without built-in accounts nothing is signed with it: a throwaway secret will do.
    secret = builtinAuth ? devSecret(dataDir) : randomBytes(48).toString('base64url')
    generatedSecret = builtinAuth
  }
  const config: Config = {
    ...raw,
    DATA_DIR: dataDir,
    JWT_SECRET: secret,
    INSTANCE_ID: raw.INSTANCE_ID ?? `ts-${randomUUID().slice(0, 8)}`,
    limits: Object.freeze({
      ...DEFAULT_LIMITS,
      titleMax: raw.LIMIT_TITLE,
      descriptionMax: raw.LIMIT_DESCRIPTION,
      tagsMax: raw.LIMIT_TAGS,
      tagLengthMax: raw.LIMIT_TAG_LENGTH,
      customFieldsMax: raw.LIMIT_CUSTOM_FIELDS,
      customFieldValueBytesMax: raw.LIMIT_CUSTOM_FIELD_BYTES,
      commentBodyMax: raw.LIMIT_COMMENT_BODY,
      opBytesMax: raw.WS_MAX_MESSAGE_BYTES,
    }),
    generatedSecret,
    wsOrigins: originList(raw.WS_ALLOWED_ORIGINS ?? (production ? raw.CORS_ORIGIN : '*')),
    builtinAuth,
    externalAuth,
  }
  return Object.freeze(config)
}

/** Outside production a missing secret is generated once and kept in DATA_DIR. */
function devSecret(dataDir: string): string {
  const file = join(dataDir, 'jwt-secret')
  if (existsSync(file)) return readFileSync(file, 'utf8').trim()
  mkdirSync(dataDir, { recursive: true })
  const secret = randomBytes(48).toString('base64url')
  writeFileSync(file, secret + '\n', { mode: 0o600, flag: 'wx' })
  return secret
}
