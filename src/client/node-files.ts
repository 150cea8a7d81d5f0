/**
 * Node sources of attachments: a file read a range at a time (never whole),
 * remembered by path so a queued upload survives a restart, and node:crypto's
 * SHA-256 (much faster than the browsers' fallback).
 */
import { createHash } from 'node:crypto'
import { open, stat } from 'node:fs/promises'
import { statSync } from 'node:fs'
import { resolve } from 'node:path'
import type { AttachSource, Sha256Factory, StoredSource } from './attachments.js'

/** A file on disk as an attachment source. */
export async function fileSource(path: string): Promise<AttachSource> {
  const abs = resolve(path)
  return fileAt(abs, (await stat(abs)).size)
}

function fileAt(abs: string, size: number): AttachSource {
  return {
    size,
    persisted: { kind: 'file', path: abs },
    async slice(start, end) {
      const fh = await open(abs, 'r')
      try {
        const buf = Buffer.allocUnsafe(end - start)
        let at = 0
        while (at < buf.length) {
          const { bytesRead } = await fh.read(buf, at, buf.length - at, start + at)
          if (bytesRead === 0) throw new Error(`${abs} is shorter than when it was attached`)
          at += bytesRead
        }
        return buf
      } finally {
        await fh.close()
      }
    },
  }
}

/** `reopenSource` for Node clients: files by path (null when gone). */
export function reopenFile(s: StoredSource): AttachSource | null {
  if (s.kind !== 'file') return null
  try {
    return fileAt(s.path, statSync(s.path).size)
  } catch {
    return null
  }
}

export const nodeSha256: Sha256Factory = () => {
  const h = createHash('sha256')
  return { update: (b) => void h.update(b), digest: () => h.digest('hex') }
}
