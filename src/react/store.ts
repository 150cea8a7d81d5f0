/**
 * The one pattern every hook of tasksync/react follows: a small external store
 * (subscribe, getSnapshot) that useSyncExternalStore reads. It starts listening
 * to the SDK when the first component subscribes and stops with the last, and
 * its snapshot is a new object only when something changed, so React re-renders
 * exactly then.
 */
export interface ExternalStore<T> {
  subscribe(listener: () => void): () => void
  get(): T
}

/**
 * A store whose `start(set)` wires SDK listeners and returns their removal.
 * `set` replaces the snapshot; notifications of one tick are batched into one.
 */
export function externalStore<T>(initial: T, start: (set: (next: T) => void, get: () => T) => () => void): ExternalStore<T> {
  let value = initial
  const listeners = new Set<() => void>()
  let stop: (() => void) | null = null
  let queued = false
  const notify = () => {
    if (queued) return
    queued = true
    queueMicrotask(() => {
      queued = false
      for (const l of [...listeners]) l()
    })
  }
  const set = (next: T) => {
    if (Object.is(next, value)) return
    value = next
    notify()
  }
  return {
    subscribe(listener) {
      listeners.add(listener)
      stop ??= start(set, () => value)
      return () => {
        listeners.delete(listener)
        if (listeners.size === 0 && stop) {
          stop()
          stop = null
        }
      }
    },
    get: () => value,
  }
}

/** Runs `fn` with the task's handle once it is loaded (unless cancelled first); errors go to `failed`. */
export function withTask<H>(open: Promise<H>, fn: (handle: H) => (() => void) | void, failed: (err: Error) => void): () => void {
  let cancelled = false
  let off: (() => void) | void
  open.then(
    (h) => {
      if (!cancelled) off = fn(h)
    },
    (err: Error) => {
      if (!cancelled) failed(err)
    },
  )
  return () => {
    cancelled = true
    off?.()
  }
}
