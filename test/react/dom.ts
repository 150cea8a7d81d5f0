/**
 * A DOM for React in Node (happy-dom), installed once per test file; the SDK
 * keeps Node's fetch and the ws package, captured before the DOM replaces them.
 */
import { GlobalRegistrator } from '@happy-dom/global-registrator'

export const nodeFetch = globalThis.fetch.bind(globalThis)

export function installDom(t: { teardown(fn: () => unknown): void }): void {
  GlobalRegistrator.register({ url: 'http://localhost/' })
  ;(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = false
  t.teardown(() => GlobalRegistrator.unregister())
}

/** Resolves once `pred` holds, re-checked on every DOM mutation and every 20 ms; fails after `ms`. */
export async function until<T>(pred: () => T | undefined | null | false, what: string, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms
  for (;;) {
    const v = pred()
    if (v) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}
