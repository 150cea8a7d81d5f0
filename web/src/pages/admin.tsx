/** Admin (owners and admins): users, devices, projects, the sync log, the organization's conflict queue, webhooks. */
import { useState, type FormEvent, type ReactNode } from 'react'
import { api, type Session } from '../session.js'
import { all, nameOf, usePeople, useProjects, useResource, type Person } from '../data.js'
import { Link } from '../router.js'
import { announce } from '../announce.js'
import { dateTime } from '../task-fields.js'
import { ConflictQueue } from './conflict-queue.js'
import { Webhooks } from './webhooks.js'

const SECTIONS = { users: 'Users', devices: 'Devices', projects: 'Projects', 'sync-log': 'Sync log', conflicts: 'Conflicts', webhooks: 'Webhooks' } as const
type Section = keyof typeof SECTIONS
const ROLES = ['owner', 'admin', 'member', 'viewer'] as const

export function Admin({ section, session }: { section: string; session: Session }) {
  const s = (section in SECTIONS ? section : 'users') as Section
  return (
    <section aria-labelledby="admin-h" className="admin">
      <h1 id="admin-h">Admin · {SECTIONS[s]}</h1>
      <nav aria-label="Admin sections" className="tabs">
        {(Object.keys(SECTIONS) as Section[]).map((k) => (
          <Link key={k} to={`/admin/${k}`} aria-current={k === s ? 'page' : undefined}>
            {SECTIONS[k]}
          </Link>
        ))}
      </nav>
      {s === 'users' && <Users session={session} />}
      {s === 'devices' && <Devices />}
      {s === 'projects' && <Projects />}
      {s === 'sync-log' && <SyncLog />}
      {s === 'conflicts' && <ConflictQueue all />}
      {s === 'webhooks' && <Webhooks />}
    </section>
  )
}

/** Runs an admin action, shows its error or announces its success. */
function useAction(): [string | null, (what: string, fn: () => Promise<unknown>, then?: () => void) => Promise<void>] {
  const [problem, setProblem] = useState<string | null>(null)
  const run = async (what: string, fn: () => Promise<unknown>, then?: () => void) => {
    try {
      await fn()
      setProblem(null)
      announce(what)
      then?.()
    } catch (err) {
      setProblem((err as Error).message)
    }
  }
  return [problem, run]
}

const Problem = ({ text }: { text: string | null }) => (text ? <p role="alert" className="error">{text}</p> : null)

function Users({ session }: { session: Session }) {
  const { data: people, reload } = usePeople()
  const [problem, run] = useAction()
  const create = (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault()
    const form = e.currentTarget
    const f = new FormData(form)
    void run('User created', () => api('POST', '/api/users', { email: f.get('email'), displayName: f.get('displayName'), password: f.get('password'), role: f.get('role') }), () => {
      form.reset()
      reload()
    })
  }
  return (
    <>
      <Problem text={problem} />
      <table>
        <caption className="sr-only">Users of the organization</caption>
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Email</th>
            <th scope="col">Role</th>
            <th scope="col">
              <span className="sr-only">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {people?.map((p) => (
            <tr key={p.id} data-user={p.email}>
              <td>{p.displayName}</td>
              <td>{p.email}</td>
              <td>
                <label className="sr-only" htmlFor={`role-${p.id}`}>
                  Role of {p.displayName}
                </label>
                <select id={`role-${p.id}`} value={p.role} disabled={p.id === session.user.id} onChange={(e) => void run(`${p.displayName} is now ${e.target.value}`, () => api('PATCH', `/api/users/${p.id}`, { role: e.target.value }), reload)}>
                  {ROLES.map((r) => (
                    <option key={r}>{r}</option>
                  ))}
                </select>
              </td>
              <td>
                {p.id !== session.user.id && (
                  <button type="button" className="danger" onClick={() => confirm(`Deactivate ${p.displayName}? They are signed out everywhere.`) && void run(`${p.displayName} deactivated`, () => api('DELETE', `/api/users/${p.id}`), reload)}>
                    Deactivate
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <h2>Add a user</h2>
      <form className="grid-form" onSubmit={create}>
        <label>
          Name
          <input name="displayName" required maxLength={200} />
        </label>
        <label>
          Email
          <input name="email" type="email" required />
        </label>
        <label>
          Password
          <input name="password" type="password" minLength={8} required autoComplete="new-password" />
        </label>
        <label>
          Role
          <select name="role" defaultValue="member">
            {ROLES.map((r) => (
              <option key={r}>{r}</option>
            ))}
          </select>
        </label>
        <button type="submit">Add user</button>
      </form>
    </>
  )
}

interface Device {
  id: string
  userId: string
  name: string
  platform: string
  createdAt: string
  lastSeenAt: string | null
  revokedAt: string | null
}

function Devices() {
  const { data: people } = usePeople()
  const { data: devices, reload } = useResource<(Device & { owner: string })[]>(
    null,
    async () => {
      const everyone = people ?? (await all<Person>('/api/users'))
      const lists = await Promise.all(everyone.map(async (p) => (await all<Device>(`/api/devices?userId=${p.id}`)).map((d) => ({ ...d, owner: p.displayName }))))
      return lists.flat()
    },
    [people?.length],
  )
  const [problem, run] = useAction()
  return (
    <>
      <Problem text={problem} />
      <Table caption="Devices" head={['Person', 'Device', 'Platform', 'Last seen', 'State', '']}>
        {devices?.map((d) => (
          <tr key={d.id}>
            <td>{d.owner}</td>
            <td>{d.name}</td>
            <td>{d.platform}</td>
            <td>{d.lastSeenAt ? dateTime(d.lastSeenAt) : '—'}</td>
            <td>{d.revokedAt ? `Revoked ${dateTime(d.revokedAt)}` : 'Active'}</td>
            <td>
              {!d.revokedAt && (
                <button type="button" className="danger" onClick={() => void run(`Device ${d.name} revoked`, () => api('DELETE', `/api/devices/${d.id}`), reload)}>
                  Revoke
                </button>
              )}
            </td>
          </tr>
        ))}
      </Table>
    </>
  )
}

function Projects() {
  const { data: projects, reload } = useProjects()
  const [problem, run] = useAction()
  const [names, setNames] = useState<Record<string, string>>({})
  const create = (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault()
    const form = e.currentTarget
    const name = String(new FormData(form).get('name')).trim()
    void run(`Project ${name} created`, () => api('POST', '/api/projects', { name }), () => {
      form.reset()
      reload()
    })
  }
  return (
    <>
      <Problem text={problem} />
      <Table caption="Projects" head={['Name', 'State', '']}>
        {projects?.map((p) => (
          <tr key={p.id} data-project={p.name}>
            <td>
              <form
                className="row"
                onSubmit={(e) => {
                  e.preventDefault()
                  const name = (names[p.id] ?? p.name).trim()
                  void run(`Project renamed to ${name}`, () => api('PATCH', `/api/projects/${p.id}`, { name }), reload)
                }}
              >
                <label className="sr-only" htmlFor={`name-${p.id}`}>
                  Name of {p.name}
                </label>
                <input id={`name-${p.id}`} value={names[p.id] ?? p.name} onChange={(e) => setNames({ ...names, [p.id]: e.target.value })} />
                <button type="submit">Rename</button>
              </form>
            </td>
            <td>{p.archivedAt ? `Archived ${dateTime(p.archivedAt)}` : 'Active'}</td>
            <td>
              {!p.archivedAt && (
                <button type="button" onClick={() => void run(`Project ${p.name} archived`, () => api('POST', `/api/projects/${p.id}/archive`), reload)}>
                  Archive
                </button>
              )}
            </td>
          </tr>
        ))}
      </Table>
      <h2>New project</h2>
      <form className="row" onSubmit={create}>
        <label>
          Name <input name="name" required maxLength={200} />
        </label>
        <button type="submit">Create project</button>
      </form>
    </>
  )
}

interface SyncLogItem {
  id: number
  userId: string
  deviceId: string
  clientId: string | null
  kind: 'push' | 'pull' | 'resume'
  counts: Record<string, number>
  durationMs: number
  at: string
}

function SyncLog() {
  const { data: people } = usePeople()
  const [pages, setPages] = useState(1)
  const { data } = useResource<{ items: SyncLogItem[]; more: boolean }>(
    null,
    async () => {
      const items: SyncLogItem[] = []
      let cursor: string | null = null
      for (let i = 0; i < pages; i++) {
        const page: { items: SyncLogItem[]; nextCursor: string | null } = await api('GET', `/api/sync/log?limit=100${cursor ? `&cursor=${cursor}` : ''}`)
        items.push(...page.items)
        cursor = page.nextCursor
        if (!cursor) break
      }
      return { items, more: cursor !== null }
    },
    [pages],
  )
  return (
    <>
      <Table caption="Sync log, newest first" head={['When', 'Who', 'Kind', 'What', 'Duration']}>
        {data?.items.map((e) => (
          <tr key={e.id}>
            <td>{dateTime(e.at)}</td>
            <td>{nameOf(people, e.userId)}</td>
            <td>{e.kind}</td>
            <td>
              {Object.entries(e.counts)
                .map(([k, v]) => `${k} ${v}`)
                .join(', ')}
            </td>
            <td>{e.durationMs} ms</td>
          </tr>
        ))}
      </Table>
      {data?.items.length === 0 && <p className="muted">No sync yet: pushes, pulls and resumes of every device show here.</p>}
      {data?.more && (
        <button type="button" onClick={() => setPages(pages + 1)}>
          Load more
        </button>
      )}
    </>
  )
}

function Table({ caption, head, children }: { caption: string; head: string[]; children: ReactNode }) {
  return (
    <table>
      <caption className="sr-only">{caption}</caption>
      <thead>
        <tr>
          {head.map((h, i) => (
            <th key={i} scope="col">
              {h || <span className="sr-only">Actions</span>}
            </th>
          ))}
        </tr>
      </thead>
      <tbody>{children}</tbody>
    </table>
  )
}
