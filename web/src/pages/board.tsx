/**
 * The board: columns by status, live (useWatch), filters in the URL
 * (projectId, assigneeId, tag, q: the names of GET /api/tasks), cards dragged
 * between columns (or moved with Alt+←/→), a task created inline per column.
 */
import { memo, useMemo, useState, type DragEvent, type FormEvent, type KeyboardEvent } from 'react'
import type { TaskSnapshot } from 'tasksync/client'
import { useClient, useWatch } from 'tasksync/react'
import { nameOf, usePeople, useProjects, type Person } from '../data.js'
import { Link, navigate, useRoute } from '../router.js'
import { announce } from '../announce.js'
import type { Session } from '../session.js'
import { PRIORITIES, STATUSES, STATUS_LABEL, isOverdue, shortDate, type Status } from '../task-fields.js'

const FILTERS = ['projectId', 'assigneeId', 'tag', 'q'] as const

export function Board({ session }: { session: Session }) {
  const client = useClient()
  const { query } = useRoute()
  const f = Object.fromEntries(FILTERS.map((k) => [k, query.get(k) ?? ''])) as Record<(typeof FILTERS)[number], string>
  const { tasks, error } = useWatch(f.projectId ? { projectId: f.projectId } : { all: true })
  const people = usePeople().data
  const projects = useProjects().data
  const readOnly = session.user.role === 'viewer'

  const setFilter = (key: string, value: string) => {
    const q = new URLSearchParams(query)
    if (value) q.set(key, value)
    else q.delete(key)
    const s = q.toString()
    navigate(`/board${s ? `?${s}` : ''}`, { replace: true })
  }

  const tags = useMemo(() => [...new Set(tasks.flatMap((t) => t.tags))].sort(), [tasks])
  const columns = useMemo(() => {
    const needle = f.q.toLowerCase()
    const by = new Map<Status, TaskSnapshot[]>(STATUSES.map((s) => [s, []]))
    for (const t of tasks) {
      if (f.assigneeId && (f.assigneeId === 'none' ? t.assigneeId !== null : t.assigneeId !== f.assigneeId)) continue
      if (f.tag && !t.tags.includes(f.tag)) continue
      if (needle && !t.title.toLowerCase().includes(needle) && !t.description.toLowerCase().includes(needle)) continue
      by.get(t.status as Status)?.push(t)
    }
    for (const list of by.values()) list.sort((a, b) => b.priority - a.priority || (a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : 0))
    return by
  }, [tasks, f.q, f.assigneeId, f.tag])

  const move = (id: string, status: Status) => {
    client.task(id).then((h) => {
      if (h.snapshot.status === status) return
      h.update({ status })
      announce(`Moved “${h.snapshot.title}” to ${STATUS_LABEL[status]}`)
    })
  }
  const create = (status: Status, title: string) => {
    const t = client.createTask({ title, status, projectId: f.projectId || (projects?.find((p) => !p.archivedAt)?.id ?? null), ...(f.assigneeId && f.assigneeId !== 'none' ? { assigneeId: f.assigneeId } : {}) })
    announce(`Created “${t.snapshot.title}” in ${STATUS_LABEL[status]}`)
  }
  const shown = [...columns.values()].reduce((n, l) => n + l.length, 0)

  return (
    <section aria-labelledby="board-h" className="board-page">
      <div className="page-head">
        <h1 id="board-h">Board</h1>
        <p className="hint" id="move-hint">
          Drag a card to another column, or focus it and press Alt+→ / Alt+←.
        </p>
      </div>
      <form className="filters" role="search" aria-label="Filter the board" onSubmit={(e) => e.preventDefault()}>
        <label>
          Project
          <select value={f.projectId} onChange={(e) => setFilter('projectId', e.target.value)}>
            <option value="">All projects</option>
            {projects?.filter((p) => !p.archivedAt).map((p) => (
              <option key={p.id} value={p.id}>
                {p.name}
              </option>
            ))}
          </select>
        </label>
        <label>
          Assignee
          <select value={f.assigneeId} onChange={(e) => setFilter('assigneeId', e.target.value)}>
            <option value="">Anyone</option>
            <option value="none">Unassigned</option>
            {people?.map((p) => (
              <option key={p.id} value={p.id}>
                {p.displayName}
              </option>
            ))}
          </select>
        </label>
        <label>
          Tag
          <select value={f.tag} onChange={(e) => setFilter('tag', e.target.value)}>
            <option value="">Any tag</option>
            {tags.map((t) => (
              <option key={t}>{t}</option>
            ))}
          </select>
        </label>
        <label>
          Search
          <input type="search" value={f.q} placeholder="Title or description" onChange={(e) => setFilter('q', e.target.value)} />
        </label>
        <span className="count" aria-live="polite">
          {shown} of {tasks.length} tasks
        </span>
      </form>
      {error && <p role="alert">{error.message}</p>}
      <div className="columns">
        {STATUSES.map((s) => (
          <Column key={s} status={s} tasks={columns.get(s)!} people={people} move={move} create={readOnly ? null : create} />
        ))}
      </div>
    </section>
  )
}

/** Cards drawn per column at first: a long column grows on demand, so a board of thousands stays quick. */
const PAGE = 60

function Column({ status, tasks, people, move, create }: { status: Status; tasks: TaskSnapshot[]; people: Person[] | null; move: (id: string, s: Status) => void; create: ((s: Status, title: string) => void) | null }) {
  const [over, setOver] = useState(false)
  const [limit, setLimit] = useState(PAGE)
  const drop = (e: DragEvent) => {
    e.preventDefault()
    setOver(false)
    const id = e.dataTransfer.getData('application/x-tasksync-task') || e.dataTransfer.getData('text/plain')
    if (id) move(id, status)
  }
  const submit = (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault()
    const input = e.currentTarget.elements.namedItem('title') as HTMLInputElement
    const title = input.value.trim()
    if (!title || !create) return
    create(status, title)
    input.value = ''
  }
  const headingId = `col-${status}`
  return (
    <section
      className={`column${over ? ' over' : ''}`}
      aria-labelledby={headingId}
      data-status={status}
      onDragOver={(e) => {
        e.preventDefault()
        e.dataTransfer.dropEffect = 'move'
        setOver(true)
      }}
      onDragLeave={() => setOver(false)}
      onDrop={drop}
    >
      <h2 id={headingId}>
        {STATUS_LABEL[status]} <span className="n">{tasks.length}</span>
      </h2>
      {create && (
        <form className="inline-create" onSubmit={submit}>
          <label className="sr-only" htmlFor={`new-${status}`}>
            New task in {STATUS_LABEL[status]}
          </label>
          <input id={`new-${status}`} name="title" placeholder="+ New task" autoComplete="off" maxLength={1000} />
        </form>
      )}
      <ul className="cards">
        {tasks.slice(0, limit).map((t) => (
          <Card key={t.id} task={t} assignee={t.assigneeId ? nameOf(people, t.assigneeId) : null} move={move} />
        ))}
      </ul>
      {tasks.length > limit && (
        <button type="button" className="quiet more" onClick={() => setLimit(limit + PAGE * 4)}>
          Show {Math.min(PAGE * 4, tasks.length - limit)} more of {tasks.length - limit}
        </button>
      )}
    </section>
  )
}

const Card = memo(function Card({ task, assignee, move }: { task: TaskSnapshot; assignee: string | null; move: (id: string, s: Status) => void }) {
  const overdue = isOverdue(task)
  const key = (e: KeyboardEvent) => {
    if (!e.altKey || (e.key !== 'ArrowRight' && e.key !== 'ArrowLeft')) return
    e.preventDefault()
    const i = STATUSES.indexOf(task.status as Status) + (e.key === 'ArrowRight' ? 1 : -1)
    if (i >= 0 && i < STATUSES.length) move(task.id, STATUSES[i])
    // Keep the focus on the card in its new column.
    requestAnimationFrame(() => document.querySelector<HTMLElement>(`[data-task="${task.id}"] a`)?.focus())
  }
  return (
    <li
      className={`card p${task.priority}`}
      data-task={task.id}
      draggable
      onDragStart={(e) => {
        e.dataTransfer.setData('application/x-tasksync-task', task.id)
        e.dataTransfer.setData('text/plain', task.id)
        e.dataTransfer.effectAllowed = 'move'
      }}
    >
      <Link to={`/tasks/${task.id}`} className="card-title" onKeyDown={key} aria-describedby="move-hint">
        {task.title || 'Untitled'}
      </Link>
      <div className="meta">
        {task.priority > 0 && <span className={`prio p${task.priority}`}>{PRIORITIES[task.priority]}</span>}
        {task.dueAt && (
          <span className={overdue ? 'due overdue' : 'due'}>
            {overdue ? 'Overdue · ' : 'Due '}
            {shortDate(task.dueAt)}
          </span>
        )}
        {assignee && <span className="assignee">{assignee}</span>}
      </div>
      {task.tags.length > 0 && (
        <ul className="tags" aria-label="Tags">
          {task.tags.map((t) => (
            <li key={t}>{t}</li>
          ))}
        </ul>
      )}
    </li>
  )
})
