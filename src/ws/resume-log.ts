/**
 * Sync log lines of socket resumes, written together: a storm brings hundreds of
 * resumes a second to one instance, and a statement each would queue in the pool
 * beside the resumes' own reads and the live commits. Lines wait at most `delayMs`
 * (or until `maxBatch` have gathered), one write at a time; a failed write is
 * reported and its lines dropped, as a single lost line was before.
 */
import type { SyncLogEntry } from '../storage/sync/log.js'
import type { ResumeRecorder } from './subscribe.js'

export function batchedResumeLog(
  write: (entries: SyncLogEntry[]) => Promise<void>,
  onError: (err: unknown, lost: number) => void,
  o: { delayMs?: number; maxBatch?: number } = {},
): ResumeRecorder & { flush(): Promise<void> } {
  const delayMs = o.delayMs ?? 100
  const maxBatch = o.maxBatch ?? 500
  let queued: SyncLogEntry[] = []
  let timer: ReturnType<typeof setTimeout> | null = null
  let writing: Promise<void> | null = null

  const run = (): Promise<void> => {
    if (timer) clearTimeout(timer)
    timer = null
    if (writing || !queued.length) return writing ?? Promise.resolve()
    const batch = queued.splice(0, maxBatch)
    writing = write(batch)
      .catch((err) => onError(err, batch.length))
      .finally(() => {
        writing = null
        if (queued.length) schedule(queued.length >= maxBatch ? 0 : delayMs)
      })
    return writing
  }
  const schedule = (ms: number) => {
    if (timer || writing) return
    timer = setTimeout(() => void run(), ms)
    timer.unref?.()
  }
  const record = ((entry: SyncLogEntry) => {
    queued.push(entry)
    schedule(queued.length >= maxBatch ? 0 : delayMs)
  }) as ResumeRecorder & { flush(): Promise<void> }
  /** Writes what is queued now (and waits for a write under way). */
  record.flush = async () => {
    while (writing || queued.length) await (writing ?? run())
  }
  return record
}
