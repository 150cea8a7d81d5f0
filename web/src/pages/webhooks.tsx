/** Admin · Webhooks: the organization's endpoints, their delivery log and dead letters, a test event, redelivery. */
import { useState, type FormEvent } from 'react'
import { api } from '../session.js'
import { useResource } from '../data.js'
import { announce } from '../announce.js'
import { dateTime } from '../task-fields.js'

interface Endpoint {
  id: string
  url: string
  events: string[]
  active: boolean
  failing: boolean
  failingSince: string | null
}

interface Delivery {
  id: number
  eventId: string
  eventType: string
  state: 'pending' | 'delivered' | 'dead'
  attempts: number
  lastStatus: number | null
  lastError: string | null
  latencyMs: number | null
  createdAt: string
}

const EVENT_TYPES = [
  'task.created', 'task.updated', 'task.deleted', 'task.overdue', 'task.due_soon', 'comment.created', 'comment.edited', 'comment.deleted',
  'conflict.created', 'conflict.resolved', 'member.added', 'member.updated', 'member.removed',
]

export function Webhooks() {
  const { data, reload } = useResource<Endpoint[]>(null, async () => (await api<{ items: Endpoint[] }>('GET', '/api/webhooks')).items)
  const [problem, setProblem] = useState<string | null>(null)
  const [secret, setSecret] = useState<{ url: string; secret: string } | null>(null)
  const [open, setOpen] = useState<string | null>(null)
  const run = async (what: string, fn: () => Promise<unknown>) => {
    try {
      await fn()
      setProblem(null)
      announce(what)
    } catch (err) {
      setProblem((err as Error).message)
    }
    reload()
  }
  const create = (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault()
    const form = e.currentTarget
    const f = new FormData(form)
    const picked = f.getAll('events').map(String)
    const events = f.get('all') === 'on' || picked.length === 0 ? ['*'] : picked
    void run('Endpoint added', async () => {
      const created = await api<Endpoint & { secret: string }>('POST', '/api/webhooks', { url: f.get('url'), events })
      setSecret({ url: created.url, secret: created.secret })
      form.reset()
    })
  }
  if (!data) return <p className="muted">Loading endpoints…</p>
  return (
    <>
      {problem && <p role="alert" className="error">{problem}</p>}
      {secret && (
        <p className="notice">
          Signing secret of {secret.url} (shown once; receivers verify with any Standard Webhooks library): <code data-secret>{secret.secret}</code>
        </p>
      )}
      {data.length === 0 ? (
        <p className="muted">No webhook endpoints yet.</p>
      ) : (
        <table>
          <caption className="sr-only">Webhook endpoints</caption>
          <thead>
            <tr>
              <th scope="col">URL</th>
              <th scope="col">Events</th>
              <th scope="col">State</th>
              <th scope="col"><span className="sr-only">Actions</span></th>
            </tr>
          </thead>
          <tbody>
            {data.map((ep) => (
              <tr key={ep.id} data-endpoint={ep.url}>
                <td><code>{ep.url}</code></td>
                <td>{ep.events.join(', ')}</td>
                <td>{ep.failing ? `Failing since ${dateTime(ep.failingSince!)}` : ep.active ? 'Active' : 'Paused'}</td>
                <td className="row">
                  <button type="button" onClick={() => void run(`Test event sent to ${ep.url}`, () => api('POST', `/api/webhooks/${ep.id}/test`))}>Send test</button>
                  <button type="button" aria-expanded={open === ep.id} onClick={() => setOpen(open === ep.id ? null : ep.id)}>Deliveries</button>
                  {ep.failing && (
                    <button type="button" onClick={() => void run(`Dead letters of ${ep.url} queued again`, () => api('POST', `/api/webhooks/${ep.id}/redeliver`))}>Redeliver dead letters</button>
                  )}
                  <button type="button" onClick={() => void run(ep.active ? `${ep.url} paused` : `${ep.url} resumed`, () => api('PATCH', `/api/webhooks/${ep.id}`, { active: !ep.active }))}>
                    {ep.active ? 'Pause' : 'Resume'}
                  </button>
                  <button
                    type="button"
                    onClick={() => {
                      if (confirm(`Delete the endpoint ${ep.url}?`)) void run(`${ep.url} deleted`, () => api('DELETE', `/api/webhooks/${ep.id}`))
                    }}
                  >
                    Delete
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {open && <Deliveries endpoint={data.find((e) => e.id === open)!} />}
      <h2>New endpoint</h2>
      <form className="stack" onSubmit={create}>
        <label>
          URL <input name="url" type="url" required placeholder="https://example.com/hooks/tasksync" maxLength={2000} />
        </label>
        <fieldset>
          <legend>Events</legend>
          <label>
            <input type="checkbox" name="all" defaultChecked /> Every event
          </label>
          {EVENT_TYPES.map((type) => (
            <label key={type}>
              <input type="checkbox" name="events" value={type} /> {type}
            </label>
          ))}
        </fieldset>
        <button type="submit">Add endpoint</button>
      </form>
    </>
  )
}

function Deliveries({ endpoint }: { endpoint: Endpoint }) {
  const [state, setState] = useState('')
  const { data, reload } = useResource<Delivery[]>(
    null,
    async () => (await api<{ items: Delivery[] }>('GET', `/api/webhooks/${endpoint.id}/deliveries?limit=50${state ? `&state=${state}` : ''}`)).items,
    [endpoint.id, state],
  )
  return (
    <section aria-labelledby="deliveries-h">
      <h2 id="deliveries-h">Deliveries to {endpoint.url}</h2>
      <div className="row">
        <label>
          Show{' '}
          <select value={state} onChange={(e) => setState(e.target.value)}>
            <option value="">all</option>
            <option value="pending">pending</option>
            <option value="delivered">delivered</option>
            <option value="dead">dead letters</option>
          </select>
        </label>
        <button type="button" onClick={reload}>Refresh</button>
      </div>
      {!data ? null : data.length === 0 ? (
        <p className="muted">No deliveries.</p>
      ) : (
        <table>
          <caption className="sr-only">Delivery log</caption>
          <thead>
            <tr>
              <th scope="col">Event</th>
              <th scope="col">State</th>
              <th scope="col">Attempts</th>
              <th scope="col">Last answer</th>
              <th scope="col">Latency</th>
              <th scope="col">Queued</th>
            </tr>
          </thead>
          <tbody>
            {data.map((d) => (
              <tr key={d.id} data-delivery={d.state}>
                <td>{d.eventType} <code>{d.eventId.slice(0, 8)}</code></td>
                <td>{d.state === 'dead' ? 'Dead letter' : d.state}</td>
                <td>{d.attempts}</td>
                <td>{d.lastStatus ?? d.lastError ?? '—'}</td>
                <td>{d.latencyMs === null ? '—' : `${d.latencyMs} ms`}</td>
                <td>{dateTime(d.createdAt)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  )
}
