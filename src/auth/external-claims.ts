/**
 * Reading an identity provider's claims as tasksync's: pure rules, no I/O.
 * Claim names come from configuration (AUTH_CLAIM_*); roles are mapped through
 * AUTH_ROLE_MAP to tasksync's four.
 */
import type { Role } from './principal.js'

/** Highest first: of several mapped roles a token names, the strongest wins. */
const RANK: readonly Role[] = ['owner', 'admin', 'member', 'viewer']

/**
 * The claim `name` of a payload: the member of that exact name when there is one
 * (Auth0's namespaced claims are URLs full of dots), else a dotted path into nested
 * objects (Keycloak's `realm_access.roles`).
 */
export function claimAt(payload: Record<string, unknown>, name: string): unknown {
  if (Object.prototype.hasOwnProperty.call(payload, name)) return payload[name]
  let at: unknown = payload
  for (const part of name.split('.')) {
    if (typeof at !== 'object' || at === null || Array.isArray(at) || !Object.prototype.hasOwnProperty.call(at, part)) return undefined
    at = (at as Record<string, unknown>)[part]
  }
  return at
}

/**
 * The tasksync role of a role claim: a string or an array of strings, each looked
 * up (case-insensitively) in `roleMap`; the highest mapped one wins, names that map
 * to nothing are ignored (Keycloak lists `offline_access` and the like). Nothing
 * mapped: `defaultRole` (null: the token gets no role and is refused).
 */
export function mapRole(claim: unknown, roleMap: Readonly<Record<string, Role>>, defaultRole: Role | null): Role | null {
  const names = typeof claim === 'string' ? [claim] : Array.isArray(claim) ? claim.filter((x): x is string => typeof x === 'string') : []
  let best: Role | null = null
  for (const name of names) {
    const key = name.trim().toLowerCase()
    const role = Object.prototype.hasOwnProperty.call(roleMap, key) ? roleMap[key] : undefined
    if (role && (best === null || RANK.indexOf(role) < RANK.indexOf(best))) best = role
  }
  return best ?? defaultRole
}

/** A string claim trimmed and cut to `max` characters; undefined when absent, not a string or blank. */
export function stringClaim(value: unknown, max: number): string | undefined {
  if (typeof value !== 'string') return undefined
  const s = value.trim()
  return s ? s.slice(0, max) : undefined
}

/** Device keys name one install of an external user: 1–128 visible ASCII characters. */
export const DEVICE_KEY = /^[\x21-\x7e]{1,128}$/

/** The device of an external token that came without a device key. */
export const DEFAULT_DEVICE_KEY = 'default'
