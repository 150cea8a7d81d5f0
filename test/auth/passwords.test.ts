import t from 'tap'
import { hashPassword, verifyPassword } from '../../src/auth/passwords.js'

t.test('scrypt hashes: salted, self-describing, verified in constant time', async (t) => {
  const a = await hashPassword('correct horse', 10)
  const b = await hashPassword('correct horse', 10)
  t.match(a, /^scrypt\$10\$8\$1\$[\w-]{22}\$[\w-]{43}$/)
  t.not(a, b, 'a fresh salt per hash')
  t.equal(await verifyPassword('correct horse', a), true)
  t.equal(await verifyPassword('correct horsf', a), false)
  t.equal(await verifyPassword('', a), false)
  t.equal(await verifyPassword('correct horse', 'plain'), false, 'a malformed hash never verifies')
  t.equal(await verifyPassword('correct horse', 'scrypt$99$8$1$AAAA$AAAA'), false, 'an absurd cost is refused')
})

t.test('the default cost is N = 2^15 (memory-hard: 32 MiB per hash)', async (t) => {
  const h = await hashPassword('pässwörd')
  t.match(h, /^scrypt\$15\$8\$1\$/)
  t.equal(await verifyPassword('pa\u0308sswo\u0308rd', h), true, 'Unicode is normalized (NFC) before hashing')
})
