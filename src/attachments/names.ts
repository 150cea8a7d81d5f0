/**
 * What a client says about a file, made safe to store and to send back in a
 * header: names without path separators, control or format characters, or
 * traversal; content types as a plain `type/subtype`.
 */

/** At most this many UTF-8 bytes in a stored name (what most file systems allow). */
export const NAME_MAX_BYTES = 255

/**
 * The name as stored: NFC, control/format characters (bidi overrides included)
 * removed, `/`, `\` and `:` replaced by `_`, no leading dots (no `.`/`..`, no
 * hidden files), trimmed, cut to 255 UTF-8 bytes on a character boundary;
 * `file` when nothing is left. Idempotent.
 */
export function sanitizeName(raw: string): string {
  let name = raw.normalize('NFC').replace(/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/gu, '').replace(/[/\\:]/g, '_')
  name = name.replace(/^[\s.]+/u, '').replace(/[\s.]+$/u, '').replace(/\s+/gu, ' ')
  const enc = new TextEncoder()
  if (enc.encode(name).length > NAME_MAX_BYTES) {
    let out = ''
    for (const ch of name) {
      if (enc.encode(out + ch).length > NAME_MAX_BYTES) break
      out += ch
    }
    name = out.replace(/[\s.]+$/u, '')
  }
  return name === '' ? 'file' : name
}

const MIME = /^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}\/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$/

/** `type/subtype` in lowercase without parameters; anything else is application/octet-stream. */
export function sanitizeContentType(raw: string): string {
  const base = raw.split(';')[0].trim().toLowerCase()
  return MIME.test(base) ? base : 'application/octet-stream'
}

/** Image types a browser may show inline from our origin (no SVG: it runs scripts). */
export const INLINE_TYPES: ReadonlySet<string> = new Set(['image/png', 'image/jpeg', 'image/gif', 'image/webp', 'image/avif'])

/** Image types a thumbnail is made for. */
export const THUMBNAIL_TYPES: ReadonlySet<string> = new Set(['image/png', 'image/jpeg', 'image/webp'])
