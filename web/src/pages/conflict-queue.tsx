/** The server's conflict queue (one task's, or the organization's) with its resolve actions. */
import { useState } from 'react'
import { api } from '../session.js'
import { nameOf, usePeople, useResource } from '../data.js'
import { Link } from '../router.js'
import { dateTime } from '../task-fields.js'

interface Conflict {
  id: string
  taskId: string
  field: 'status' | 'assigneeId'
  committedValue: unknown
  incomingValue: unknown
  incomingUserId: string
  status: 'open' | 'resolved'
  resolution?: unknown
  createdAt: string
}

export function ConflictQueue({ taskId, all = false }: { taskId?: string; all?: boolean }) {
  const people = usePeople().data
  const [problem, setProblem] = useState<string | null>(null)
  const q = new URLSearchParams({ status: all ? 'all' : 'open', limit: '200' })
  if (taskId) q.set('taskId', taskId)
  const { data, reload } = useResource<Conflict[]>(null, async () => (await api<{ items: Conflict[] }>('GET', `/api/sync/conflicts?${q}`)).items, [taskId, all])
  const value = (field: string, v: unknown) => (field === 'assigneeId' ? nameOf(people, v as string | null) : String(v))
  const resolve = async (c: Conflict, choose: 'committed' | 'incoming') => {
    try {
      await api('POST', `/api/sync/conflicts/${c.id}/resolve`, { choose })
      setProblem(null)
    } catch (err) {
      setProblem((err as Error).message)
    }
    reload()
  }
  if (!data) return null
  if (data.length === 0) return <p className="muted">No open conflicts.</p>
  return (
    <>
      {problem && <p role="alert" className="error">{problem}</p>}
      <ul className="conflict-list">
        {data.map((c) => (
          <li key={c.id} className="conflict" data-conflict={c.id}>
            <p>
              {!taskId && (
                <>
                  <Link to={`/tasks/${c.taskId}`}>Task {c.taskId.slice(0, 8)}</Link>:{' '}
                </>
              )}
              <strong>{c.field === 'status' ? 'Status' : 'Assignee'}</strong>: kept <em>{value(c.field, c.committedValue)}</em>, {nameOf(people, c.incomingUserId)} wanted <em>{value(c.field, c.incomingValue)}</em>{' '}
              <time dateTime={c.createdAt}>({dateTime(c.createdAt)})</time>
            </p>
            {c.status === 'open' ? (
              <div className="row">
                <button type="button" onClick={() => void resolve(c, 'committed')}>
                  Keep {value(c.field, c.committedValue)}
                </button>
                <button type="button" onClick={() => void resolve(c, 'incoming')}>
                  Use {value(c.field, c.incomingValue)}
                </button>
              </div>
            ) : (
              <p className="muted">Resolved</p>
            )}
          </li>
        ))}
      </ul>
    </>
  )
}
