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
  if (production && !raw.JWT_SECRET && !raw.JWT_PRIVATE_KEY)
    throw new ConfigError('JWT_SECRET or JWT_PRIVATE_KEY is required when NODE_ENV=production')
  if (raw.JWT_SECRET && raw.JWT_PRIVATE_KEY) throw new ConfigError('set either JWT_SECRET or JWT_PRIVATE_KEY, not both')

  const dataDir = resolve(raw.DATA_DIR)
  let secret = raw.JWT_SECRET
  let generatedSecret = false
  if (!secret && !raw.JWT_PRIVATE_KEY) {
    secret = devSecret(dataDir)
    generatedSecret = true
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
