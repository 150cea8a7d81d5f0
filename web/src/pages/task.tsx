/**
 * One task: title and description edited together live (useTextField: each
 * keystroke an op, carets kept under remote edits), who is here and where,
 * every field, threaded comments, the history, and its conflicts.
 */
import { memo, useEffect, useMemo, useState, type FormEvent } from 'react'
import type { Comment, TaskHandle, TaskSnapshot } from 'tasksync/client'
import { useComments, useConflicts, usePresence, useTask, useTextField } from 'tasksync/react'
import { Attachments } from './attachments.js'
import { api, type Session } from '../session.js'
import { nameOf, usePeople, useProjects, useResource, type Person } from '../data.js'
import { Link, navigate } from '../router.js'
import { announce } from '../announce.js'
import { PRIORITIES, STATUSES, STATUS_LABEL, dateTime, isOverdue } from '../task-fields.js'
import { ConflictQueue } from './conflict-queue.js'

export function TaskPage({ id, session }: { id: string; session: Session }) {
  const { task, snapshot, loading, error } = useTask(id)
  const people = usePeople().data
  useEffect(() => {
    if (snapshot) document.title = `${snapshot.title || 'Untitled'} · tasksync`
    return () => {
      document.title = 'tasksync'
    }
  }, [snapshot?.title])
  if (loading) return <p>Loading the task…</p>
  if (error || !task || !snapshot) return <p role="alert">This task does not exist or you cannot see it. <Link to="/board">Back to the board</Link></p>
  if (snapshot.deleted) return <p role="alert">This task was deleted. <Link to="/board">Back to the board</Link></p>
  const readOnly = session.user.role === 'viewer'
  return (
    <article className="task-page" aria-labelledby="task-h">
      <p className="crumbs">
        <Link to="/board">← Board</Link>
      </p>
      <h1 id="task-h" className="sr-only">
        Task {snapshot.title}
      </h1>
      {!readOnly && <UndoBar task={task} />}
      <Editor task={task} session={session} people={people} readOnly={readOnly} />
      <div className="task-grid">
        <div>
          <Comments taskId={id} session={session} people={people} readOnly={readOnly} />
          <Attachments task={task} readOnly={readOnly} />
        </div>
        <aside aria-label="Task details">
          <Fields task={task} snapshot={snapshot} people={people} readOnly={readOnly} />
          <Conflicts taskId={id} />
          <History taskId={id} rev={snapshot.rev} people={people} />
        </aside>
      </div>
    </article>
  )
}

/**
 * Undo and redo of this browser's own edits of the task (the SDK's per-user
 * undo: others' edits stay). Ctrl/Cmd+Z and Ctrl/Cmd+Shift+Z (or Ctrl+Y) anywhere
 * on the page but in the comment boxes, whose own text undo is left alone. The
 * page re-renders on every change of the task, so canUndo/canRedo stay current.
 */
function UndoBar({ task }: { task: TaskHandle }) {
  const [problem, setProblem] = useState<string | null>(null)
  const run = (what: 'undo' | 'redo') => {
    try {
      if (what === 'undo' ? task.undo() : task.redo()) announce(what === 'undo' ? 'Undone' : 'Redone')
      setProblem(null)
    } catch (err) {
      setProblem((err as Error).message)
    }
  }
  useEffect(() => {
    const key = (e: KeyboardEvent) => {
      if (!(e.ctrlKey || e.metaKey) || e.altKey) return
      const k = e.key.toLowerCase()
      if (k !== 'z' && k !== 'y') return
      const target = e.target as HTMLElement | null
      const editable = target?.closest('input, textarea, [contenteditable]')
      if (editable && editable.id !== 'title' && editable.id !== 'description') return
      e.preventDefault() // the browser's own text undo would fight the task's history
      run(k === 'y' || e.shiftKey ? 'redo' : 'undo')
    }
    window.addEventListener('keydown', key)
    return () => window.removeEventListener('keydown', key)
  }, [task])
  return (
    <div className="undo-bar" role="toolbar" aria-label="Undo and redo">
      <button type="button" onClick={() => run('undo')} disabled={!task.canUndo} title="Undo your last change (Ctrl+Z)">
        ↶ Undo
      </button>
      <button type="button" onClick={() => run('redo')} disabled={!task.canRedo} title="Redo (Ctrl+Shift+Z)">
        ↷ Redo
      </button>
      {problem && <span role="alert" className="error">{problem}</span>}
    </div>
  )
}

const Editor = memo(function Editor({ task, session, people, readOnly }: { task: TaskHandle; session: Session; people: Person[] | null; readOnly: boolean }) {
  const [peers, share] = usePresence(task.id)
  const [problem, setProblem] = useState<string | null>(null)
  const opts = (field: 'title' | 'description') => ({
    onCaret: (c: { start: number; end: number } | null, typing: boolean) => share(c ? { field, cursor: c.start, end: c.end, typing, name: session.user.displayName } : null),
    onError: (err: Error) => setProblem(err.message),
  })
  const titleRef = useTextField(task, 'title', opts('title'))
  const descRef = useTextField(task, 'description', opts('description'))
  useEffect(() => () => share(null), [share])
  const here = peers.map((p) => {
    const who = typeof p.state.name === 'string' ? p.state.name : nameOf(people, p.userId)
    const where = p.state.field === 'title' || p.state.field === 'description' ? `${p.state.typing ? 'typing in' : 'in'} the ${p.state.field} at ${String(p.state.cursor)}` : 'viewing'
    return { key: p.clientId, who, where }
  })
  return (
    <section className="editor" aria-label="Title and description">
      <div className="presence" aria-live="polite" data-testid="presence">
        {here.length === 0 ? (
          <span className="alone">Only you are here</span>
        ) : (
          here.map((p) => (
            <span key={p.key} className="peer">
              <span className="avatar" aria-hidden="true">
                {p.who.slice(0, 1)}
              </span>
              {p.who} — {p.where}
            </span>
          ))
        )}
      </div>
      {problem && (
        <p role="alert" className="error">
          {problem}
        </p>
      )}
      <label className="sr-only" htmlFor="title">
        Title
      </label>
      <input id="title" className="title-input" ref={titleRef} readOnly={readOnly} placeholder="Untitled" autoComplete="off" />
      <label htmlFor="description">Description</label>
      <textarea id="description" ref={descRef} readOnly={readOnly} rows={8} placeholder="Write the details…" />
    </section>
  )
})

/**
 * Every change of the task renders the page again, a keystroke in the title
 * (local or remote) too; the parts that do not show the text skip it (memo):
 * a remote keystroke then costs the receiving browser one small render.
 */
const sameFields = (a: FieldsProps, b: FieldsProps) =>
  a.task === b.task &&
  a.people === b.people &&
  a.readOnly === b.readOnly &&
  (['status', 'priority', 'assigneeId', 'dueAt', 'projectId', 'tags', 'customFields', 'deleted'] as const).every((k) => a.snapshot[k] === b.snapshot[k])

interface FieldsProps {
  task: TaskHandle
  snapshot: TaskSnapshot
  people: Person[] | null
  readOnly: boolean
}

const Fields = memo(function Fields({ task, snapshot, people, readOnly }: FieldsProps) {
  const projects = useProjects().data
  const [tag, setTag] = useState('')
  const [cfKey, setCfKey] = useState('')
  const [cfValue, setCfValue] = useState('')
  const [problem, setProblem] = useState<string | null>(null)
  const update = (patch: Parameters<TaskHandle['update']>[0]) => {
    try {
      task.update(patch)
      setProblem(null)
    } catch (err) {
      setProblem((err as Error).message)
    }
  }
  const addTag = (e: FormEvent) => {
    e.preventDefault()
    const t = tag.trim()
    if (t && !snapshot.tags.includes(t)) update({ tags: [...snapshot.tags, t] })
    setTag('')
  }
  const addField = (e: FormEvent) => {
    e.preventDefault()
    const k = cfKey.trim()
    if (!k) return
    let v: unknown = cfValue
    try {
      v = JSON.parse(cfValue)
    } catch {
      // Plain text.
    }
    update({ customFields: { [k]: v as never } })
    setCfKey('')
    setCfValue('')
  }
  const due = snapshot.dueAt ? snapshot.dueAt.slice(0, 10) : ''
  return (
    <section className="fields" aria-labelledby="fields-h">
      <h2 id="fields-h">Details</h2>
      {problem && <p role="alert" className="error">{problem}</p>}
      <fieldset disabled={readOnly}>
        <label>
          Status
          <select value={snapshot.status} onChange={(e) => update({ status: e.target.value as never })}>
            {STATUSES.map((s) => (
              <option key={s} value={s}>
                {STATUS_LABEL[s]}
              </option>
            ))}
          </select>
        </label>
        <label>
          Priority
          <select value={snapshot.priority} onChange={(e) => update({ priority: Number(e.target.value) })}>
            {PRIORITIES.map((p, i) => (
              <option key={p} value={i}>
                {p}
              </option>
            ))}
          </select>
        </label>
        <label>
          Assignee
          <select value={snapshot.assigneeId ?? ''} onChange={(e) => update({ assigneeId: e.target.value || null })}>
            <option value="">Nobody</option>
            {people?.map((p) => (
              <option key={p.id} value={p.id}>
                {p.displayName}
              </option>
            ))}
          </select>
        </label>
        <label>
          Due date {isOverdue(snapshot) && <span className="due overdue">Overdue</span>}
          <input type="date" value={due} onChange={(e) => update({ dueAt: e.target.value ? `${e.target.value}T00:00:00.000Z` : null })} />
        </label>
        <label>
          Project
          <select value={snapshot.projectId ?? ''} onChange={(e) => update({ projectId: e.target.value || null })}>
            <option value="">No project</option>
            {projects?.map((p) => (
              <option key={p.id} value={p.id}>
                {p.name}
                {p.archivedAt ? ' (archived)' : ''}
              </option>
            ))}
          </select>
        </label>
        <div className="tag-editor">
          <span className="label" id="tags-l">
            Tags
          </span>
          <ul className="tags" aria-labelledby="tags-l">
            {snapshot.tags.map((t) => (
              <li key={t}>
                {t}
                <button type="button" className="x" aria-label={`Remove tag ${t}`} onClick={() => update({ tags: snapshot.tags.filter((x) => x !== t) })}>
                  ×
                </button>
              </li>
            ))}
          </ul>
          <form onSubmit={addTag} className="row">
            <label className="sr-only" htmlFor="new-tag">
              New tag
            </label>
            <input id="new-tag" value={tag} onChange={(e) => setTag(e.target.value)} placeholder="Add a tag" maxLength={64} />
            <button type="submit">Add</button>
          </form>
        </div>
        <div className="custom-fields">
          <span className="label">Custom fields</span>
          <dl>
            {Object.entries(snapshot.customFields).map(([k, v]) => (
              <div key={k}>
                <dt>{k}</dt>
                <dd>
                  {JSON.stringify(v)}
                  <button type="button" className="x" aria-label={`Remove field ${k}`} onClick={() => update({ customFields: { [k]: null } })}>
                    ×
                  </button>
                </dd>
              </div>
            ))}
          </dl>
          <form onSubmit={addField} className="row">
            <label className="sr-only" htmlFor="cf-key">
              Field name
            </label>
            <input id="cf-key" value={cfKey} onChange={(e) => setCfKey(e.target.value)} placeholder="name" />
            <label className="sr-only" htmlFor="cf-value">
              Field value
            </label>
            <input id="cf-value" value={cfValue} onChange={(e) => setCfValue(e.target.value)} placeholder="value" />
            <button type="submit">Set</button>
          </form>
        </div>
        <button
          type="button"
          className="danger"
          onClick={() => {
            if (!confirm(`Delete “${task.snapshot.title}”?`)) return
            task.delete()
            announce('Task deleted')
            navigate('/board')
          }}
        >
          Delete task
        </button>
      </fieldset>
    </section>
  )
}, sameFields)

const Comments = memo(function Comments({ taskId, session, people, readOnly }: { taskId: string; session: Session; people: Person[] | null; readOnly: boolean }) {
  const { comments, loading, add, edit, remove } = useComments(taskId)
  const [replyTo, setReplyTo] = useState<string | null>(null)
  const [editing, setEditing] = useState<string | null>(null)
  const roots = comments.filter((c) => !c.parentId || !comments.some((p) => p.id === c.parentId))
  const replies = (id: string) => comments.filter((c) => c.parentId === id)
  const form = (label: string, onDone: (body: string) => void, initial = '', id: string) => (
    <form
      className="comment-form"
      onSubmit={(e) => {
        e.preventDefault()
        const area = e.currentTarget.elements.namedItem('body') as HTMLTextAreaElement
        const body = area.value.trim()
        if (!body) return
        onDone(body)
        area.value = ''
      }}
    >
      <label htmlFor={id} className="sr-only">
        {label}
      </label>
      <textarea id={id} name="body" rows={2} defaultValue={initial} placeholder={label} required />
      <button type="submit">{label}</button>
    </form>
  )
  const one = (c: Comment) => (
    <li key={c.id} className="comment" data-comment={c.id}>
      <div className="comment-head">
        <strong>{nameOf(people, c.authorId || session.user.id)}</strong> <time dateTime={c.createdAt}>{dateTime(c.createdAt)}</time>
        {c.editCount > 0 && <span className="edited"> · edited</span>}
      </div>
      {editing === c.id ? (
        form('Save', (body) => {
          edit(c.id, body)
          setEditing(null)
        }, c.body, `edit-${c.id}`)
      ) : (
        <p className="body">{c.body}</p>
      )}
      {!readOnly && (
        <div className="comment-actions">
          <button type="button" className="link" onClick={() => setReplyTo(replyTo === c.id ? null : c.id)}>
            Reply
          </button>
          {(c.authorId === session.user.id || !c.authorId) && (
            <>
              <button type="button" className="link" onClick={() => setEditing(editing === c.id ? null : c.id)}>
                Edit
              </button>
              <button type="button" className="link" onClick={() => remove(c.id)}>
                Delete
              </button>
            </>
          )}
        </div>
      )}
      {replyTo === c.id &&
        form('Reply', (body) => {
          add(body, c.id)
          setReplyTo(null)
        }, '', `reply-${c.id}`)}
      {replies(c.id).length > 0 && <ul className="replies">{replies(c.id).map(one)}</ul>}
    </li>
  )
  return (
    <section className="comments" aria-labelledby="comments-h">
      <h2 id="comments-h">Comments {comments.length > 0 && <span className="n">{comments.length}</span>}</h2>
      {loading && comments.length === 0 && <p>Loading comments…</p>}
      <ul className="thread">{roots.map(one)}</ul>
      {!readOnly && form('Comment', (body) => add(body), '', 'new-comment')}
    </section>
  )
})

interface HistoryEntry {
  rev: number
  userId: string
  at: string
  changes: Record<string, { from: unknown; to: unknown }>
}

/** `value`, once it has not changed for `ms`. */
function useSettled<T>(value: T, ms: number): T {
  const [settled, setSettled] = useState(value)
  useEffect(() => {
    const timer = setTimeout(() => setSettled(value), ms)
    return () => clearTimeout(timer)
  }, [value, ms])
  return settled
}

function History({ taskId, rev: liveRev, people }: { taskId: string; rev: number; people: Person[] | null }) {
  // Read again once the task's rev stops moving (not on every keystroke of a live edit).
  const rev = useSettled(liveRev, 800)
  const { data } = useResource<HistoryEntry[]>(`history.${taskId}`, async () => {
    const page = await api<{ items: HistoryEntry[] }>('GET', `/api/tasks/${taskId}/history?limit=500`)
    return page.items
  }, [rev])
  const entries = useMemo(() => [...(data ?? [])].reverse(), [data])
  const show = (v: unknown): string => (typeof v === 'string' ? (v.length > 40 ? `“${v.slice(0, 40)}…”` : `“${v}”`) : JSON.stringify(v))
  // Rendered again only when the entries change (the component itself runs on every rev).
  return useMemo(
    () => (
      <section className="history" aria-labelledby="history-h">
        <h2 id="history-h">History</h2>
        <ol className="timeline">
          {entries.map((h) => (
            <li key={h.rev}>
              <div>
                <strong>{nameOf(people, h.userId)}</strong> <time dateTime={h.at}>{dateTime(h.at)}</time> <span className="rev">rev {h.rev}</span>
              </div>
              <ul>
                {h.rev === 1 ? (
                  <li>created the task</li>
                ) : (
                  Object.entries(h.changes).map(([field, c]) => (
                    <li key={field}>
                      {field}: {show(c.from)} → {show(c.to)}
                    </li>
                  ))
                )}
              </ul>
            </li>
          ))}
        </ol>
      </section>
    ),
    [entries, people],
  )
}

const Conflicts = memo(function Conflicts({ taskId }: { taskId: string }) {
  const { conflicts, dismiss } = useConflicts(taskId)
  return (
    <section className="conflicts" aria-labelledby="conflicts-h">
      <h2 id="conflicts-h">Conflicts</h2>
      {conflicts.map((c) => (
        <div key={c.key} role="alert" className="conflict local">
          {c.kind === 'rejected' ? 'A change of yours was refused' : c.kind === 'lost' ? 'A change of yours no longer applied' : 'A comment change was refused'}
          {c.code ? ` (${c.code})` : ''}: {c.message}
          <button type="button" className="link" onClick={() => dismiss(c)}>
            Dismiss
          </button>
        </div>
      ))}
      <ConflictQueue taskId={taskId} />
    </section>
  )
})
