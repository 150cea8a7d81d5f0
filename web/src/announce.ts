/** Messages for screen readers (and the toast line): one polite live region for the whole app. */
const listeners = new Set<(text: string) => void>()
export function announce(text: string): void {
  for (const l of listeners) l(text)
}
export function onAnnounce(fn: (text: string) => void): () => void {
  listeners.add(fn)
  return () => listeners.delete(fn)
}
