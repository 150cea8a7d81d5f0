/**
 * REST data the SDK does not carry (people, projects, history, the conflict
 * queue, stats): read through the session, kept in localStorage so the pages
 * still name people and projects offline.
 */
import { useCallback, useEffect, useState } from 'react'
import { api, readSession } from './session.js'

export interface Person {
  id: string
  email: string
  displayName: string
  role: 'owner' | 'admin' | 'member' | 'viewer'
  createdAt: string
}
export interface Project {
  id: string
  name: string
  archivedAt: string | null
}
interface Page<T> {
  items: T[]
  nextCursor: string | null
}

/** Every page of a list. */
export async function all<T>(path: string): Promise<T[]> {
  const out: T[] = []
  let cursor: string | null = null
  do {
    const sep = path.includes('?') ? '&' : '?'
    const page: Page<T> = await api('GET', `${path}${sep}limit=200${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`)
    out.push(...page.items)
    cursor = page.nextCursor
  } while (cursor)
  return out
}

const cacheKey = (key: string) => `tasksync.cache.${readSession()?.user.id ?? 'none'}.${key}`

/**
 * `{data, error, reload}` for a GET, remembered under `key` for offline use
 * (`key` null: not remembered). `deps` re-run it.
 */
export function useResource<T>(key: string | null, load: () => Promise<T>, deps: unknown[] = []): { data: T | null; error: Error | null; reload: () => void } {
  const [data, setData] = useState<T | null>(() => {
    if (!key) return null
    try {
      const raw = localStorage.getItem(cacheKey(key))
      return raw ? (JSON.parse(raw) as T) : null
    } catch {
      return null
    }
  })
  const [error, setError] = useState<Error | null>(null)
  const [tick, setTick] = useState(0)
  useEffect(() => {
    let live = true
    load().then(
      (d) => {
        if (!live) return
        setData(d)
        setError(null)
        if (key) localStorage.setItem(cacheKey(key), JSON.stringify(d))
      },
      (e: Error) => live && setError(e),
    )
    return () => {
      live = false
    }
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [tick, key, ...deps])
  const reload = useCallback(() => setTick((n) => n + 1), [])
  return { data, error, reload }
}

export const usePeople = () => useResource<Person[]>('people', () => all<Person>('/api/users'))
export const useProjects = () => useResource<Project[]>('projects', () => all<Project>('/api/projects?includeArchived=true'))

/** Display name by user id (the id's start when unknown). */
export function nameOf(people: Person[] | null, id: string | null | undefined): string {
  if (!id) return 'nobody'
  return people?.find((p) => p.id === id)?.displayName ?? `user ${id.slice(0, 8)}`
}
