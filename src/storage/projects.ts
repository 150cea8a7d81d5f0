/**
 * Projects: named groups of tasks within an organization. Archiving hides a
 * project from the default list; its tasks stay as they are.
 */
import { randomUUID } from 'node:crypto'
import { and, asc, eq, gt, isNull } from 'drizzle-orm'
import type { Executor } from './db.js'
import { projects } from './schema.js'
import { isUniqueViolation } from './errors.js'
import { TaskSyncError } from '../protocol/errors.js'

export interface ProjectDto {
  id: string
  name: string
  createdBy: string
  createdAt: string
  updatedAt: string
  archivedAt: string | null
}

type ProjectRow = typeof projects.$inferSelect

export function toProject(row: ProjectRow): ProjectDto {
  return {
    id: row.id,
    name: row.name,
    createdBy: row.createdBy,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
    archivedAt: row.archivedAt ? row.archivedAt.toISOString() : null,
  }
}

/** Creates a project; an id already used in the organization is `already_exists`. */
export async function createProject(exec: Executor, orgId: string, createdBy: string, input: { id?: string; name: string }): Promise<ProjectDto> {
  try {
    const [row] = await exec.insert(projects).values({ orgId, id: input.id ?? randomUUID(), name: input.name, createdBy }).returning()
    return toProject(row)
  } catch (err) {
    if (isUniqueViolation(err)) throw new TaskSyncError('already_exists', 'a project with this id already exists')
    throw err
  }
}

export async function getProject(exec: Executor, orgId: string, id: string): Promise<ProjectDto | null> {
  const [row] = await exec.select().from(projects).where(and(eq(projects.orgId, orgId), eq(projects.id, id))).limit(1)
  return row ? toProject(row) : null
}

/** Projects ordered by id after `after`; archived ones only when asked. */
export async function listProjects(exec: Executor, orgId: string, opts: { after?: string; limit: number; includeArchived: boolean }): Promise<ProjectDto[]> {
  const rows = await exec
    .select()
    .from(projects)
    .where(and(eq(projects.orgId, orgId), opts.after ? gt(projects.id, opts.after) : undefined, opts.includeArchived ? undefined : isNull(projects.archivedAt)))
    .orderBy(asc(projects.id))
    .limit(opts.limit)
  return rows.map(toProject)
}

/** Renames; null when the project is not in the organization. */
export async function renameProject(exec: Executor, orgId: string, id: string, name: string): Promise<ProjectDto | null> {
  const [row] = await exec
    .update(projects)
    .set({ name, updatedAt: new Date() })
    .where(and(eq(projects.orgId, orgId), eq(projects.id, id)))
    .returning()
  return row ? toProject(row) : null
}

/** Archives (idempotent: an archived project keeps its first archivedAt); null when not found. */
export async function archiveProject(exec: Executor, orgId: string, id: string): Promise<ProjectDto | null> {
  const now = new Date()
  const [row] = await exec
    .update(projects)
    .set({ archivedAt: now, updatedAt: now })
    .where(and(eq(projects.orgId, orgId), eq(projects.id, id), isNull(projects.archivedAt)))
    .returning()
  return row ? toProject(row) : getProject(exec, orgId, id)
}
