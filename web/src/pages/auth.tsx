/** Sign in and register (with the demo workspace option). */
import { useState, type FormEvent } from 'react'
import { endedBecause, register, signIn, type Session } from '../session.js'
import { Link } from '../router.js'

export function SignIn({ onIn }: { onIn: (s: Session) => void }) {
  const [error, setError] = useState<string | null>(endedBecause)
  const [busy, setBusy] = useState(false)
  const submit = async (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault()
    const f = new FormData(e.currentTarget)
    setBusy(true)
    try {
      onIn(await signIn(String(f.get('email')), String(f.get('password'))))
    } catch (err) {
      setError((err as Error).message)
      setBusy(false)
    }
  }
  return (
    <section className="auth" aria-labelledby="signin-h">
      <h1 id="signin-h">Sign in</h1>
      {error && <p role="alert" className="error">{error}</p>}
      <form onSubmit={submit}>
        <label>
          Email
          <input name="email" type="email" autoComplete="email" required />
        </label>
        <label>
          Password
          <input name="password" type="password" autoComplete="current-password" required />
        </label>
        <button type="submit" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
      <p>
        New here? <Link to="/register">Create a workspace</Link>
      </p>
    </section>
  )
}

export function Register({ onIn }: { onIn: (s: Session) => void }) {
  const [error, setError] = useState<string | null>(null)
  const [busy, setBusy] = useState(false)
  const submit = async (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault()
    const f = new FormData(e.currentTarget)
    setBusy(true)
    try {
      onIn(
        await register({
          orgName: String(f.get('orgName')),
          displayName: String(f.get('displayName')),
          email: String(f.get('email')),
          password: String(f.get('password')),
          demo: f.get('demo') === 'on',
        }),
      )
    } catch (err) {
      setError((err as Error).message)
      setBusy(false)
    }
  }
  return (
    <section className="auth" aria-labelledby="register-h">
      <h1 id="register-h">Create a workspace</h1>
      {error && <p role="alert" className="error">{error}</p>}
      <form onSubmit={submit}>
        <label>
          Workspace name
          <input name="orgName" required maxLength={200} />
        </label>
        <label>
          Your name
          <input name="displayName" autoComplete="name" required maxLength={200} />
        </label>
        <label>
          Email
          <input name="email" type="email" autoComplete="email" required />
        </label>
        <label>
          Password (8 characters or more)
          <input name="password" type="password" autoComplete="new-password" minLength={8} required />
        </label>
        <label className="check">
          <input name="demo" type="checkbox" /> Fill it with a demo workspace (teammates, projects, tasks with history and comments)
        </label>
        <button type="submit" disabled={busy}>
          {busy ? 'Creating…' : 'Create workspace'}
        </button>
      </form>
      <p>
        Already have an account? <Link to="/login">Sign in</Link>
      </p>
    </section>
  )
}
