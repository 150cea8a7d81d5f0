/**
 * Test data written straight into storage, in bulk, exactly as the sequencer
 * would have written it: each task's op log starts with rev 1 = creationOp(content),
 * every later rev is an op applied by the op type, history rows carry
 * historyChanges(before, after), and the vector clock counts ops per device.
 * Deterministic for a given `randomSeed`.
 */
import { randomUUID } from 'node:crypto'
import { sql } from 'drizzle-orm'
import type { Database } from './db.js'
import { searchHeadVector, searchVector } from './search-index.js'
import { taskType, contentFromInit, creationOp, historyChanges } from '../domain/index.js'
import type { Status, TaskContent, TaskOp } from '../domain/types.js'

export interface SeedOptions {
  orgs: number
  /** Users per organization; the first is the owner, the second an admin, the rest members. */
  users: number
  projects: number
  /** Tasks per organization. */
  tasks: number
  /** Edits per task after its creation (each a rev with its history entry). */
  history: number
  /** Comments per task. */
  comments: number
  /** Produces the stored password hash (the auth module's). */
  hashPassword: (password: string) => Promise<string>
  randomSeed?: number
  /** Title and description of task `i` (default: a few words of a small vocabulary). */
  text?: (i: number, rnd: () => number) => { title: string; description: string }
  /** Called after each chunk of tasks is written. */
  onProgress?: (tasksWritten: number) => void
}

export interface SeededUser {
  id: string
  email: string
  password: string
  role: 'owner' | 'admin' | 'member'
  deviceId: string
  /** Default: `Seed <role> <email name>`. */
  displayName?: string
}

export interface SeededOrg {
  id: string
  name: string
  users: SeededUser[]
  projectIds: string[]
  taskIds: string[]
}

const CHUNK = 1000
const WORDS = ['ship', 'fix', 'review', 'design', 'api', 'sync', 'login', 'report', 'mobile', 'cache', 'docs', 'billing', 'search', 'deploy', 'audit', 'export']
const TAGS = ['backend', 'frontend', 'bug', 'feature', 'ops', 'urgent', 'design', 'mobile']
const STATUSES: Status[] = ['todo', 'in_progress', 'in_review', 'done']

/** mulberry32: a tiny deterministic PRNG. */
function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export async function seedData(database: Database, o: SeedOptions): Promise<SeededOrg[]> {
  const rnd = prng(o.randomSeed ?? 42)
  const out: SeededOrg[] = []
  for (let n = 0; n < o.orgs; n++) {
    const org: SeededOrg = { id: randomUUID(), name: `Demo org ${n + 1}`, users: [], projectIds: [], taskIds: [] }
    const tag = org.id.slice(0, 8)
    for (let u = 0; u < o.users; u++) {
      const role = u === 0 ? 'owner' : u === 1 ? 'admin' : 'member'
      org.users.push({ id: randomUUID(), email: `${role}${u + 1}-${tag}@seed.example`, password: `seed-${tag}-${u + 1}-password`, role, deviceId: randomUUID() })
    }
    await database.rows(sql`insert into organizations (id, name) values (${org.id}::uuid, ${org.name})`)
    await insertUsers(database, org.id, org.users, o.hashPassword)
    await fillProjectsAndTasks(database, org, o, rnd)
    out.push(org)
  }
  return out
}

/** People of a demo workspace besides its owner: assignees, editors and commenters of the demo tasks. */
const DEMO_TEAM = [
  { displayName: 'Grace Hopper', role: 'admin' },
  { displayName: 'Alan Turing', role: 'member' },
  { displayName: 'Katherine Johnson', role: 'member' },
] as const

/**
 * Fills a newly registered organization the way `npm run seed` does, on a
 * smaller scale: a few teammates (who cannot log in: random passwords), projects,
 * tasks with history, due dates and comments, written as the sequencer would.
 * Only for an organization nobody has used yet (nothing is fanned out).
 */
export async function fillDemoWorkspace(
  database: Database,
  org: { id: string; name: string },
  owner: { id: string; email: string; deviceId: string },
  o: Pick<SeedOptions, 'hashPassword'> & Partial<Pick<SeedOptions, 'projects' | 'tasks' | 'history' | 'comments' | 'randomSeed'>> = { hashPassword: async () => '' },
): Promise<SeededOrg> {
  const seeded: SeededOrg = { id: org.id, name: org.name, users: [{ id: owner.id, email: owner.email, password: '', role: 'owner', deviceId: owner.deviceId }], projectIds: [], taskIds: [] }
  const tag = org.id.slice(0, 8)
  const team: SeededUser[] = DEMO_TEAM.map((m) => ({
    id: randomUUID(),
    email: `${m.displayName.split(' ')[0].toLowerCase()}-${tag}@demo.example`,
    password: randomUUID(),
    role: m.role,
    deviceId: randomUUID(),
    displayName: m.displayName,
  }))
  await insertUsers(database, org.id, team, o.hashPassword)
  seeded.users.push(...team)
  const opts = { projects: o.projects ?? 3, tasks: o.tasks ?? 40, history: o.history ?? 3, comments: o.comments ?? 1, hashPassword: o.hashPassword, orgs: 1, users: seeded.users.length }
  await fillProjectsAndTasks(database, seeded, opts, prng(o.randomSeed ?? 7))
  return seeded
}

async function fillProjectsAndTasks(database: Database, org: SeededOrg, o: SeedOptions, rnd: () => number): Promise<void> {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]
  org.projectIds = await insertProjects(database, org, o.projects)
  for (let start = 0; start < o.tasks; start += CHUNK) {
    const count = Math.min(CHUNK, o.tasks - start)
    const batch = Array.from({ length: count }, (_, i) => buildTask(org, start + i, o, rnd, pick))
    await insertTasks(database, org.id, batch)
    org.taskIds.push(...batch.map((b) => b.id))
    o.onProgress?.(start + count)
  }
}

async function insertUsers(database: Database, orgId: string, people: SeededUser[], hashPassword: (p: string) => Promise<string>): Promise<void> {
  const users = await Promise.all(
    people.map(async (u) => ({
      id: u.id,
      email: u.email,
      display_name: u.displayName ?? `Seed ${u.role} ${u.email.split('@')[0]}`,
      password_hash: await hashPassword(u.password),
      role: u.role,
      device_id: u.deviceId,
    })),
  )
  const json = JSON.stringify(users)
  await database.rows(sql`insert into users (org_id, id, email, display_name, password_hash, role)
    select ${orgId}::uuid, id, email, display_name, password_hash, role
    from jsonb_to_recordset(${json}::jsonb) as x(id uuid, email text, display_name text, password_hash text, role text)`)
  await database.rows(sql`insert into devices (org_id, id, user_id, name, platform)
    select ${orgId}::uuid, device_id, id, 'seed', 'cli' from jsonb_to_recordset(${json}::jsonb) as x(id uuid, device_id uuid)`)
}

async function insertProjects(database: Database, org: SeededOrg, count: number): Promise<string[]> {
  const projects = Array.from({ length: count }, (_, i) => ({ id: randomUUID(), name: `Project ${i + 1}` }))
  if (projects.length === 0) return []
  await database.rows(sql`insert into projects (org_id, id, name, created_by)
    select ${org.id}::uuid, id, name, ${org.users[0].id}::uuid from jsonb_to_recordset(${JSON.stringify(projects)}::jsonb) as x(id uuid, name text)`)
  return projects.map((p) => p.id)
}

interface Rev {
  rev: number
  op: TaskOp
  userId: string
  deviceId: string
  at: string
  changes: Record<string, unknown>
}

interface BuiltTask {
  id: string
  content: TaskContent
  clock: Record<string, number>
  createdBy: string
  createdAt: string
  revs: Rev[]
  comments: { id: string; authorId: string; body: string; at: string }[]
}

function buildTask(org: SeededOrg, i: number, o: SeedOptions, rnd: () => number, pick: <T>(xs: readonly T[]) => T): BuiltTask {
  const author = pick(org.users)
  const base = Date.now() - 30 * 86_400_000 + Math.floor(rnd() * 20 * 86_400_000)
  const content = contentFromInit({
    ...(o.text ? o.text(i, rnd) : { title: `${pick(WORDS)} ${pick(WORDS)} #${i + 1}`, description: `Seeded task ${i + 1}: ${pick(WORDS)} the ${pick(WORDS)}.` }),
    status: pick(STATUSES),
    priority: Math.floor(rnd() * 5),
    tags: [...new Set([pick(TAGS), pick(TAGS)])],
    assigneeId: rnd() < 0.7 ? pick(org.users).id : null,
    projectId: org.projectIds.length ? pick(org.projectIds) : null,
    // Four in ten have a due date between 10 days ago and 20 days ahead: the dashboard has overdue tasks to show.
    dueAt: rnd() < 0.4 ? new Date(Math.floor(Date.now() / 86_400_000 + rnd() * 30 - 10) * 86_400_000).toISOString() : null,
  })
  const created = new Date(base).toISOString()
  const revs: Rev[] = [{ rev: 1, op: creationOp(content), userId: author.id, deviceId: author.deviceId, at: created, changes: historyChanges(taskType.create(), content) }]
  const clock: Record<string, number> = { [author.deviceId]: 1 }
  let current = content
  for (let h = 0; h < o.history; h++) {
    const editor = pick(org.users)
    const op = randomEdit(current, rnd, pick, org)
    const next = taskType.apply(current, op)
    revs.push({ rev: h + 2, op, userId: editor.id, deviceId: editor.deviceId, at: new Date(base + (h + 1) * 3_600_000).toISOString(), changes: historyChanges(current, next) })
    clock[editor.deviceId] = (clock[editor.deviceId] ?? 0) + 1
    current = next
  }
  const comments = Array.from({ length: o.comments }, (_, c) => ({
    id: randomUUID(),
    authorId: pick(org.users).id,
    body: `Comment ${c + 1} on task ${i + 1}: ${pick(WORDS)}?`,
    at: new Date(base + (c + 1) * 600_000).toISOString(),
  }))
  return { id: randomUUID(), content: current, clock, createdBy: author.id, createdAt: created, revs, comments }
}

/** One plausible edit: status, priority, a tag, the assignee, or text appended to the title. */
function randomEdit(c: TaskContent, rnd: () => number, pick: <T>(xs: readonly T[]) => T, org: SeededOrg): TaskOp {
  switch (Math.floor(rnd() * 5)) {
    case 0:
      return { status: { set: pick(STATUSES.filter((s) => s !== c.status)) } }
    case 1:
      return { priority: { set: (c.priority + 1) % 5 } }
    case 2: {
      const t = pick(TAGS)
      return c.tags.includes(t) ? { tags: { remove: [t] } } : { tags: { add: [t] } }
    }
    case 3:
      return { assigneeId: { set: pick(org.users).id } }
    default:
      return { title: [[...c.title].length, ` (${pick(WORDS)})`] }
  }
}

async function insertTasks(database: Database, orgId: string, batch: BuiltTask[]): Promise<void> {
  const tasks = batch.map((b) => {
    const last = b.revs.at(-1)!
    return {
      id: b.id, rev: last.rev, content: b.content, clock: b.clock, project_id: b.content.projectId, status: b.content.status,
      priority: b.content.priority, assignee_id: b.content.assigneeId, created_at: b.createdAt, created_by: b.createdBy,
      updated_at: last.at, updated_by: last.userId,
    }
  })
  const revs = batch.flatMap((b) => b.revs.map((r) => ({ task_id: b.id, rev: r.rev, op: r.op, user_id: r.userId, device_id: r.deviceId, at: r.at, changes: r.changes })))
  const comments = batch.flatMap((b) => b.comments.map((c) => ({ id: c.id, task_id: b.id, author_id: c.authorId, body: c.body, at: c.at })))
  await database.db.transaction(async (tx) => {
    // Written indexed (the search vectors computed in the org's language), not left stale for the indexer.
    await database.rows(sql`insert into tasks (org_id, id, rev, content, clock, project_id, status, priority, assignee_id, deleted, created_at, created_by, updated_at, updated_by,
        search, search_head)
      select ${orgId}::uuid, id, rev, content, clock, project_id, status, priority, assignee_id, false, created_at, created_by, updated_at, updated_by,
        ${searchVector(sql`t`)}, ${searchHeadVector(sql`t`)}
      from (select x.*, (select o.search_language::regconfig from organizations o where o.id = ${orgId}::uuid) as search_language
        from jsonb_to_recordset(${JSON.stringify(tasks)}::jsonb) as x(id uuid, rev int, content jsonb, clock jsonb, project_id uuid, status text,
          priority int, assignee_id uuid, created_at timestamptz, created_by uuid, updated_at timestamptz, updated_by uuid)) t`, tx)
    // Pull's record of their change (this transaction).
    await database.rows(sql`insert into task_changes (org_id, task_id)
      select ${orgId}::uuid, id from jsonb_to_recordset(${JSON.stringify(tasks.map((x) => ({ id: x.id })))}::jsonb) as x(id uuid)`, tx)
    const revJson = JSON.stringify(revs)
    await database.rows(sql`insert into task_ops (org_id, task_id, rev, op, user_id, device_id, committed_at)
      select ${orgId}::uuid, task_id, rev, op, user_id, device_id, at
      from jsonb_to_recordset(${revJson}::jsonb) as x(task_id uuid, rev int, op jsonb, user_id uuid, device_id uuid, at timestamptz)`, tx)
    await database.rows(sql`insert into task_history (org_id, task_id, rev, user_id, device_id, changes, at)
      select ${orgId}::uuid, task_id, rev, user_id, device_id, changes, at
      from jsonb_to_recordset(${revJson}::jsonb) as x(task_id uuid, rev int, user_id uuid, device_id uuid, changes jsonb, at timestamptz)`, tx)
    if (comments.length)
      await database.rows(sql`insert into comments (org_id, id, task_id, author_id, body, created_at, updated_at)
        select ${orgId}::uuid, id, task_id, author_id, body, at, at
        from jsonb_to_recordset(${JSON.stringify(comments)}::jsonb) as x(id uuid, task_id uuid, author_id uuid, body text, at timestamptz)`, tx)
  })
}
