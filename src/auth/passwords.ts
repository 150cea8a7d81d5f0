/**
 * Password hashing with scrypt (memory-hard, in Node's crypto: no native addon).
 * The stored string carries its own parameters, so the cost can be raised later
 * without invalidating existing hashes.
 */
import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto'

const KEY_LENGTH = 32

function derive(password: string, salt: Buffer, N: number, r: number, p: number): Promise<Buffer> {
  // maxmem must exceed 128·N·r, or Node refuses costs above its 32 MiB default.
  const options: ScryptOptions = { N, r, p, maxmem: 256 * N * r + 1024 * 1024 }
  return new Promise((resolve, reject) =>
    scrypt(password.normalize('NFC'), salt, KEY_LENGTH, options, (err, key) => (err ? reject(err) : resolve(key))),
  )
}

/** `scrypt$<logN>$<r>$<p>$<salt b64url>$<hash b64url>` */
export async function hashPassword(password: string, logN = 15): Promise<string> {
  const salt = randomBytes(16)
  const r = 8
  const p = 1
  const key = await derive(password, salt, 2 ** logN, r, p)
  return ['scrypt', logN, r, p, salt.toString('base64url'), key.toString('base64url')].join('$')
}

/** Constant-time check of a password against a stored hash; false for a malformed hash. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parts = stored.split('$')
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false
  const [logN, r, p] = parts.slice(1, 4).map(Number)
  if (![logN, r, p].every(Number.isInteger) || logN < 1 || logN > 22) return false
  const expected = Buffer.from(parts[5], 'base64url')
  const key = await derive(password, Buffer.from(parts[4], 'base64url'), 2 ** logN, r, p)
  return key.length === expected.length && timingSafeEqual(key, expected)
}

/** A hash of nothing: verified against when an email is unknown, so timing does not reveal which emails exist. */
let decoy: Promise<string> | undefined
export function decoyHash(logN: number): Promise<string> {
  return (decoy ??= hashPassword(randomBytes(12).toString('hex'), logN))
}
