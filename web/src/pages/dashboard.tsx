/** The dashboard: GET /api/stats drawn as SVG charts, each with its figures in text for screen readers. */
import { api } from '../session.js'
import { useResource } from '../data.js'
import { Link } from '../router.js'
import { PRIORITIES, STATUS_LABEL, shortDate, type Status } from '../task-fields.js'

interface Stats {
  generatedAt: string
  days: number
  totals: { tasks: number; open: number; overdue: number }
  byStatus: { status: Status; count: number }[]
  byPriority: { priority: number; count: number }[]
  byAssignee: { assigneeId: string | null; displayName: string | null; count: number }[]
  perDay: { date: string; created: number; completed: number }[]
  overdue: { id: string; title: string; dueAt: string; status: Status; assigneeId: string | null }[]
  conflicts: { open: number; raised: number; settled: number }
}

export function Dashboard() {
  const { data: s, error, reload } = useResource<Stats>('stats', () => api<Stats>('GET', '/api/stats'))
  if (!s) return error ? <p role="alert">{error.message}</p> : <p>Loading the figures…</p>
  return (
    <section aria-labelledby="dash-h" className="dashboard">
      <div className="page-head">
        <h1 id="dash-h">Dashboard</h1>
        <button type="button" className="quiet" onClick={reload}>
          Refresh
        </button>
      </div>
      <dl className="kpis">
        <Kpi label="Tasks" value={s.totals.tasks} id="tasks" />
        <Kpi label="Open" value={s.totals.open} id="open" />
        <Kpi label="Overdue" value={s.totals.overdue} id="overdue" />
        <Kpi label="Open conflicts" value={s.conflicts.open} id="conflicts-open" />
        <Kpi label={`Conflicts raised (${s.days} d)`} value={s.conflicts.raised} id="conflicts-raised" />
        <Kpi label={`Conflicts settled (${s.days} d)`} value={s.conflicts.settled} id="conflicts-settled" />
      </dl>
      <div className="charts">
        <Bars title="Tasks by status" id="status" rows={s.byStatus.map((r) => ({ label: STATUS_LABEL[r.status], value: r.count }))} />
        <Bars title="Tasks by priority" id="priority" rows={s.byPriority.map((r) => ({ label: PRIORITIES[r.priority], value: r.count }))} />
        <Bars title="Tasks by assignee" id="assignee" rows={s.byAssignee.map((r) => ({ label: r.displayName ?? 'Unassigned', value: r.count }))} />
        <PerDay days={s.perDay} />
      </div>
      <section aria-labelledby="overdue-h" className="card-box">
        <h2 id="overdue-h">Overdue tasks</h2>
        {s.overdue.length === 0 ? (
          <p className="muted">Nothing is overdue.</p>
        ) : (
          <ul className="overdue-list">
            {s.overdue.map((t) => (
              <li key={t.id}>
                <Link to={`/tasks/${t.id}`}>{t.title || 'Untitled'}</Link> <span className="due overdue">due {shortDate(t.dueAt)}</span>
              </li>
            ))}
          </ul>
        )}
      </section>
    </section>
  )
}

function Kpi({ label, value, id }: { label: string; value: number; id: string }) {
  return (
    <div className="kpi">
      <dt>{label}</dt>
      <dd data-figure={id}>{value}</dd>
    </div>
  )
}

const W = 360
const BAR = 22

function Bars({ title, rows, id }: { title: string; rows: { label: string; value: number }[]; id: string }) {
  const max = Math.max(1, ...rows.map((r) => r.value))
  const h = rows.length * (BAR + 8) + 8
  return (
    <figure className="chart card-box" data-chart={id}>
      <figcaption>{title}</figcaption>
      <svg viewBox={`0 0 ${W} ${h}`} role="img" aria-label={`${title}: ${rows.map((r) => `${r.label} ${r.value}`).join(', ')}`}>
        {rows.map((r, i) => {
          const y = 8 + i * (BAR + 8)
          const w = Math.round(((W - 150) * r.value) / max)
          return (
            <g key={r.label} data-label={r.label} data-value={r.value}>
              <text x={110} y={y + BAR / 2 + 5} textAnchor="end" className="axis">
                {r.label.length > 16 ? `${r.label.slice(0, 15)}…` : r.label}
              </text>
              <rect x={118} y={y} width={Math.max(w, r.value > 0 ? 2 : 0)} height={BAR} rx={3} className="bar" />
              <text x={124 + w} y={y + BAR / 2 + 5} className="value">
                {r.value}
              </text>
            </g>
          )
        })}
      </svg>
    </figure>
  )
}

function PerDay({ days }: { days: Stats['perDay'] }) {
  const H = 160
  const max = Math.max(1, ...days.flatMap((d) => [d.created, d.completed]))
  const step = (W - 40) / days.length
  const y = (v: number) => H - 20 - ((H - 40) * v) / max
  const created = days.reduce((n, d) => n + d.created, 0)
  const completed = days.reduce((n, d) => n + d.completed, 0)
  return (
    <figure className="chart card-box wide" data-chart="per-day">
      <figcaption>
        Created vs completed per day, last {days.length} days (<span data-figure="created-30d">{created}</span> created, <span data-figure="completed-30d">{completed}</span> completed)
      </figcaption>
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={`Per day, oldest first: ${days.map((d) => `${d.date} created ${d.created} completed ${d.completed}`).join('; ')}`}>
        <line x1={30} x2={W - 5} y1={H - 20} y2={H - 20} className="grid" />
        <text x={26} y={y(max) + 4} textAnchor="end" className="axis">
          {max}
        </text>
        <text x={26} y={H - 16} textAnchor="end" className="axis">
          0
        </text>
        {days.map((d, i) => (
          <g key={d.date} data-date={d.date} data-created={d.created} data-completed={d.completed}>
            <rect x={32 + i * step} y={y(d.created)} width={step / 2 - 1} height={H - 20 - y(d.created)} className="bar created" />
            <rect x={32 + i * step + step / 2} y={y(d.completed)} width={step / 2 - 1} height={H - 20 - y(d.completed)} className="bar completed" />
          </g>
        ))}
        <text x={32} y={H - 4} className="axis">
          {shortDate(days[0].date)}
        </text>
        <text x={W - 5} y={H - 4} textAnchor="end" className="axis">
          {shortDate(days[days.length - 1].date)}
        </text>
      </svg>
      <p className="legend">
        <span className="swatch created" aria-hidden="true" /> created <span className="swatch completed" aria-hidden="true" /> completed
      </p>
    </figure>
  )
}
