/** Property tests of the name and content-type rules (pure). */
import t from 'tap'
import fc from 'fast-check'
import { NAME_MAX_BYTES, sanitizeContentType, sanitizeName } from '../../src/attachments/names.js'

t.test('a sanitised name is safe to store and to put in a header, and sanitising it again changes nothing', async (t) => {
  const hostile = fc.oneof(
    fc.string({ unit: 'binary', maxLength: 400 }),
    fc.constantFrom('../../etc/passwd', '..', '.', '...', 'a/../b', 'C:\\Windows\\x', '\u202Egpj.exe', 'a\u0000b', ' .hidden ', '\n', 'x'.repeat(1000)),
  )
  fc.assert(
    fc.property(hostile, (raw) => {
      const name = sanitizeName(raw)
      if (name.length === 0) return false
      if (/[/\\:]/.test(name)) return false
      if (/[\p{Cc}\p{Cf}]/u.test(name)) return false
      if (name.startsWith('.') || name === '..') return false
      if (new TextEncoder().encode(name).length > NAME_MAX_BYTES) return false
      return sanitizeName(name) === name
    }),
    { numRuns: 2000 },
  )
  t.equal(sanitizeName('../../etc/passwd'), '_.._etc_passwd')
  t.equal(sanitizeName('report.pdf'), 'report.pdf')
  t.equal(sanitizeName('\u202Egpj.exe'), 'gpj.exe', 'a bidi override cannot disguise an extension')
  t.equal(sanitizeName('..'), 'file')
})

t.test('content types are a plain type/subtype or octet-stream', async (t) => {
  t.equal(sanitizeContentType('Image/PNG; charset=x'), 'image/png')
  t.equal(sanitizeContentType('text/html\r\nX-Evil: 1'), 'application/octet-stream')
  t.equal(sanitizeContentType('nonsense'), 'application/octet-stream')
  fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 300 }), (raw) => /^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+$/.test(sanitizeContentType(raw))))
})
