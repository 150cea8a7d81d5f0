/**
 * A tiny typed event emitter: the SDK runs in browsers and React Native, so it
 * cannot use node:events. A throwing listener never breaks the emitter's caller.
 */
export type Listener<T> = (event: T) => void

export class Emitter<Events extends { [K in keyof Events]: unknown }> {
  private readonly listeners = new Map<keyof Events, Set<Listener<never>>>()

  /** Adds a listener; returns a function that removes it. */
  on<K extends keyof Events>(name: K, fn: Listener<Events[K]>): () => void {
    let set = this.listeners.get(name)
    if (!set) this.listeners.set(name, (set = new Set()))
    set.add(fn as Listener<never>)
    return () => this.off(name, fn)
  }

  /** Adds a listener called at most once. */
  once<K extends keyof Events>(name: K, fn: Listener<Events[K]>): () => void {
    const off = this.on(name, (e) => {
      off()
      fn(e)
    })
    return off
  }

  /** Removes a listener added with `on`. */
  off<K extends keyof Events>(name: K, fn: Listener<Events[K]>): void {
    this.listeners.get(name)?.delete(fn as Listener<never>)
  }

  protected emit<K extends keyof Events>(name: K, event: Events[K]): void {
    const set = this.listeners.get(name)
    if (!set || set.size === 0) return
    // The listeners as they are now: one added or removed by a listener counts from the next event.
    if (set.size === 1) this.call(set.values().next().value as Listener<Events[K]>, event)
    else for (const fn of [...set]) this.call(fn as Listener<Events[K]>, event)
  }

  private call<T>(fn: Listener<T>, event: T): void {
    try {
      fn(event)
    } catch (err) {
      // A bug in app code must not corrupt the sync state machine: report it asynchronously.
      setTimeout(() => {
        throw err
      })
    }
  }
}
