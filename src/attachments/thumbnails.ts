/**
 * Thumbnails of JPEG, PNG and WebP images with sharp: at most 256 px on each
 * side, WebP. The image is streamed into sharp (which decodes it in its own
 * memory, bounded by `limitInputPixels`); a file that does not decode gets none.
 * sharp (libvips) is loaded with the first image, not at start: a server that
 * never receives one does not keep it resident.
 */
import { pipeline } from 'node:stream/promises'
import type { Readable } from 'node:stream'

let loading: Promise<(typeof import('sharp'))['default']> | undefined
const loadSharp = () => (loading ??= import('sharp').then((m) => m.default))

export const THUMBNAIL_MAX_PX = 256
export const THUMBNAIL_TYPE = 'image/webp'

/** The thumbnail's bytes, or null when the input is not a decodable image. */
export async function makeThumbnail(input: Readable): Promise<Buffer | null> {
  const sharp = await loadSharp()
  const transformer = sharp({ limitInputPixels: 100_000_000, failOn: 'error' })
    .rotate()
    .resize(THUMBNAIL_MAX_PX, THUMBNAIL_MAX_PX, { fit: 'inside', withoutEnlargement: true })
    .webp({ quality: 80 })
  const out = transformer.toBuffer()
  try {
    await pipeline(input, transformer)
    return await out
  } catch {
    out.catch(() => {})
    return null
  }
}
