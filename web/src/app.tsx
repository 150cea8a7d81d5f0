/** The app shell: who is signed in, the SDK client of that account, the header with the connection status, the pages. */
import { useEffect, useState, type ReactNode } from 'react'
import type { TaskSyncClient } from 'tasksync/client'
import { TaskSyncProvider } from 'tasksync/react'
import { makeClient, onSessionChange, readSession, signOut, type Session } from './session.js'
import { Link, match, navigate, useRoute } from './router.js'
import { StatusBar } from './status-bar.js'
import { onAnnounce } from './announce.js'
import { SignIn, Register } from './pages/auth.js'
import { Board } from './pages/board.js'
import { TaskPage } from './pages/task.js'
import { Admin } from './pages/admin.js'
import { Dashboard } from './pages/dashboard.js'

const OFFLINE_KEY = 'tasksync.offline'
export const isAdmin = (s: Session) => s.user.role === 'owner' || s.user.role === 'admin'

export function App() {
  const [session, setSession] = useState(readSession)
  const route = useRoute()
  useEffect(() => onSessionChange(() => setSession(readSession())), [])
  useEffect(() => {
    const open = route.path === '/login' || route.path === '/register'
    if (!session && !open) navigate('/login', { replace: true })
    else if (session && (open || route.path === '/')) navigate('/board', { replace: true })
  }, [session, route.path])

  if (!session) {
    return (
      <Shell session={null}>
        {route.path === '/register' ? <Register onIn={setSession} /> : <SignIn onIn={setSession} />}
      </Shell>
    )
  }
  return <SignedIn key={session.user.id} session={session} />
}

/** One account's client: opened from IndexedDB (so it works offline at once), closed and wiped on sign-out. */
function SignedIn({ session }: { session: Session }) {
  const [client, setClient] = useState<TaskSyncClient | null>(null)
  const [failed, setFailed] = useState<string | null>(null)
  useEffect(() => {
    const c = makeClient(session)
    let closed = false
    const online = () => {
      if (localStorage.getItem(OFFLINE_KEY) !== '1') c.goOnline()
    }
    c.connect().then(
      () => {
        if (closed) return
        if (localStorage.getItem(OFFLINE_KEY) === '1') c.goOffline()
        setClient(c)
      },
      (err: Error) => setFailed(err.message),
    )
    addEventListener('online', online)
    const off = onSessionChange(() => {
      if (readSession()) return
      // Signed out (here, in another tab, or by the server): nothing of this account stays in the browser.
      closed = true
      void c.close().then(() => indexedDB.deleteDatabase(`tasksync-${session.user.id}`))
    })
    return () => {
      closed = true
      removeEventListener('online', online)
      off()
      void c.close()
    }
  }, [session.user.id])
  if (failed) return <Shell session={session}><p role="alert">Could not open the local data: {failed}</p></Shell>
  if (!client) return <Shell session={session}><p>Opening your workspace…</p></Shell>
  return (
    <TaskSyncProvider client={client}>
      <Shell session={session} client={client}>
        <Pages session={session} />
      </Shell>
    </TaskSyncProvider>
  )
}

function Pages({ session }: { session: Session }) {
  const { path } = useRoute()
  const task = match('/tasks/:id', path)
  if (task) return <TaskPage id={task.id} session={session} />
  if (path === '/dashboard') return <Dashboard />
  const admin = match('/admin/:section', path) ?? (path === '/admin' ? { section: 'users' } : null)
  if (admin) return isAdmin(session) ? <Admin section={admin.section} session={session} /> : <p role="alert">Only owners and admins manage the workspace.</p>
  return <Board session={session} />
}

function Shell({ session, client, children }: { session: Session | null; client?: TaskSyncClient; children: ReactNode }) {
  const { path } = useRoute()
  const [message, setMessage] = useState('')
  useEffect(() => onAnnounce(setMessage), [])
  const nav = (to: string, label: string) => (
    <Link to={to} aria-current={path === to || (to !== '/board' && path.startsWith(to)) ? 'page' : undefined}>
      {label}
    </Link>
  )
  return (
    <>
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="top">
        <span className="brand" aria-hidden="true">
          ✓
        </span>
        <strong className="product">tasksync</strong>
        {session && (
          <nav aria-label="Main">
            {nav('/board', 'Board')}
            {nav('/dashboard', 'Dashboard')}
            {isAdmin(session) && nav('/admin', 'Admin')}
          </nav>
        )}
        <span className="spacer" />
        {client && <StatusBar client={client} />}
        {session && (
          <span className="who">
            {session.user.displayName} · {session.organization.name}
          </span>
        )}
        {session && (
          <button type="button" className="quiet" onClick={() => void signOut()}>
            Sign out
          </button>
        )}
      </header>
      <main id="main" tabIndex={-1}>
        {children}
      </main>
      <div className="toast" role="status" aria-live="polite">
        {message}
      </div>
    </>
  )
}

export { OFFLINE_KEY }
