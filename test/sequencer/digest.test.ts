/**
 * The digest's canonical JSON is the `canonicalize` package's, byte for byte: the
 * digests already recorded with (clientId, seq) were made with that package, and a
 * resend after an upgrade must still be recognised (PROTOCOL.md section 3).
 */
import t from 'tap'
import fc from 'fast-check'
import { createHash, randomUUID } from 'node:crypto'
import canonicalizeModule from 'canonicalize'
import { canonicalJson, mutationDigest } from '../../src/sequencer/digest.js'
import { rawOp } from '../domain/gen.js'

const canonicalize = canonicalizeModule as unknown as (input: unknown) => string | undefined

// Keys beyond ASCII (sorted by UTF-16 code units, surrogate pairs included), numbers at the edges of their notation.
const key = fc.oneof(fc.string(), fc.constantFrom('a', 'B', 'é', '\u{1F600}', '\uFB33', '10', '1', '', '__proto__x'))
const num = fc.oneof(fc.double({ noNaN: true, noDefaultInfinity: true }), fc.constantFrom(1e21, 1e-7, -0, 0.1, 2 ** 53, 333333333.3333333, 5e-324))
const value = fc.letrec((tie) => ({
  v: fc.oneof({ depthSize: 'small' }, fc.constant(null), fc.boolean(), num, fc.string({ unit: 'grapheme' }), tie('arr'), tie('obj')),
  arr: fc.array(fc.oneof(tie('v'), fc.constant(undefined)), { maxLength: 4 }),
  obj: fc.dictionary(key, fc.oneof(tie('v'), fc.constant(undefined)), { maxKeys: 5 }),
})).v

t.test('property: canonicalJson writes what canonicalize writes', async (t) => {
  fc.assert(fc.property(value, (v) => canonicalJson(v) === canonicalize(v)), { numRuns: 2000 })
  fc.assert(fc.property(rawOp, (op) => canonicalJson({ v: 1, kind: 'op', taskId: 'x', op }) === canonicalize({ v: 1, kind: 'op', taskId: 'x', op })), { numRuns: 500 })
  t.pass('same output on every generated value')
})

t.test('a digest is the SHA-256 of the canonicalize encoding of the versioned form', async (t) => {
  const taskId = randomUUID()
  const op = { title: [3, 'hé\u{1F600}'], tags: { add: ['b', 'a'] }, custom: { z: 1, a: { y: [1, null, 'x'] } } }
  const expected = createHash('sha256').update(canonicalize({ v: 1, kind: 'op', taskId, op })!).digest('base64url')
  t.equal(mutationDigest({ kind: 'op', taskId, op: op as never }), expected)
})

t.test('NaN and Infinity are refused, as canonicalize refuses them', async (t) => {
  t.throws(() => canonicalJson({ a: NaN }), /NaN is not allowed/)
  t.throws(() => canonicalJson([Infinity]), /Infinity is not allowed/)
  t.equal(canonicalJson({ toJSON: () => ({ b: 1, a: 2 }) }), '{"a":2,"b":1}', 'toJSON is honoured')
})
