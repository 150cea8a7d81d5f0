/** The pure rules that read an identity provider's claims: role mapping and claim paths (property tests). */
import t from 'tap'
import fc from 'fast-check'
import { claimAt, mapRole } from '../../src/auth/external-claims.js'
import { ROLES, type Role } from '../../src/auth/permissions.js'

const MAP: Record<string, Role> = { owner: 'owner', admin: 'admin', member: 'member', viewer: 'viewer', editor: 'member', reader: 'viewer', 'tasksync-admin': 'admin' }
const mapped = fc.constantFrom(...Object.keys(MAP))
const unmapped = fc.string({ unit: 'grapheme-ascii', maxLength: 12 }).filter((s) => !Object.prototype.hasOwnProperty.call(MAP, s.trim().toLowerCase()))
const roleName = fc.oneof(mapped, unmapped)
const defaultRole = fc.constantFrom<Role | null>('member', 'viewer', null)
const rank = (r: Role) => ROLES.indexOf(r)
/** Random upper/lower case and surrounding blanks: names are compared case-insensitively, trimmed. */
const disguise = (name: string, seed: number) =>
  ` ${[...name].map((c, i) => ((seed >> i % 16) & 1 ? c.toUpperCase() : c)).join('')} `

t.test('the highest mapped role wins, whatever the order, the case and the unmapped names around it', async (t) => {
  fc.assert(
    fc.property(fc.array(roleName, { maxLength: 8 }), defaultRole, fc.integer(), (names, fallback, seed) => {
      const got = mapRole(names, MAP, fallback)
      const known = names.filter((n) => Object.prototype.hasOwnProperty.call(MAP, n)).map((n) => MAP[n])
      const expected = known.length ? known.reduce((a, b) => (rank(a) <= rank(b) ? a : b)) : fallback
      if (got !== expected) return false
      if (mapRole([...names].reverse(), MAP, fallback) !== got) return false
      return mapRole(names.map((n) => disguise(n, seed)), MAP, fallback) === got
    }),
  )
})

t.test('a single string is a one-element list; anything else falls back to the default', async (t) => {
  fc.assert(fc.property(roleName, defaultRole, (name, fallback) => mapRole(name, MAP, fallback) === mapRole([name], MAP, fallback)))
  fc.assert(
    fc.property(fc.oneof(fc.integer(), fc.boolean(), fc.constant(null), fc.object()), defaultRole, (claim, fallback) => mapRole(claim, MAP, fallback) === fallback),
  )
  t.equal(mapRole(['offline_access', 'uma_authorization'], MAP, null), null, 'only unmapped names and no default: no role')
})

t.test('a claim is the member of that exact name first, else a dotted path into nested objects', async (t) => {
  const payload = {
    'https://app.example/roles': ['admin'],
    realm_access: { roles: ['viewer', 'offline_access'] },
    'a.b': 'exact',
    a: { b: 'nested' },
    list: ['x'],
  }
  t.same(claimAt(payload, 'https://app.example/roles'), ['admin'])
  t.same(claimAt(payload, 'realm_access.roles'), ['viewer', 'offline_access'])
  t.equal(claimAt(payload, 'a.b'), 'exact')
  t.equal(claimAt(payload, 'list.0'), undefined, 'paths do not index arrays')
  t.equal(claimAt(payload, 'realm_access.missing.deeper'), undefined)
  t.equal(claimAt(payload, 'toString'), undefined, 'inherited members are not claims')
  fc.assert(
    fc.property(fc.array(fc.stringMatching(/^[a-z_]{1,6}$/), { minLength: 1, maxLength: 4 }), fc.jsonValue(), (path, value) => {
      const nested = path.reduceRight<unknown>((inner, key) => ({ [key]: inner }), value)
      return JSON.stringify(claimAt(nested as Record<string, unknown>, path.join('.'))) === JSON.stringify(value)
    }),
  )
})
