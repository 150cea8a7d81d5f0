/**
 * The web app in real Chromium: register → project → tasks → board; a card
 * dragged in one browser moves in the other; the dashboard equals /api/stats
 * and a direct count; an admin deactivates a user whose open page then ends
 * signed out; every page passes axe-core (no serious or critical violation),
 * is usable with the keyboard alone, and is photographed.
 */
import t from 'tap'
import postgres from 'postgres'
import type { Page } from 'playwright-core'
import { addMember, api, startTestApp } from '../helpers/app.js'
import { axe, ensureWebBuilt, keyboardGaps, launch, newContext, shot, watchErrors } from './browser.js'

await ensureWebBuilt()

/** Every page: axe-clean, every control reached with Tab and showing its focus, photographed. */
async function noSeriousViolations(t: { same(a: unknown, b: unknown, m: string): void }, page: Page, name: string): Promise<void> {
  const violations = await axe(page)
  t.same(violations, [], `axe: no serious or critical violation on ${name}`)
  await shot(page, name)
  const gaps = await keyboardGaps(page)
  t.same(gaps, { unreached: [], noOutline: [] }, `keyboard: Tab reaches every control of ${name}, each showing its focus`)
}

t.test('the web app, page by page', async (t) => {
  const app = await startTestApp(t)
  const browser = await launch(t)
  const errors: string[] = []
  const ada = watchErrors(await (await newContext(browser, t)).newPage(), errors)

  // Sign in and register pages.
  await ada.goto(app.url + '/')
  await ada.waitForURL('**/login')
  await noSeriousViolations(t, ada, 'sign-in')
  await ada.getByRole('link', { name: 'Create a workspace' }).click()
  await ada.waitForURL('**/register')
  await noSeriousViolations(t, ada, 'register')
  const email = `ada-${Date.now()}@example.test`
  await ada.getByLabel('Workspace name').fill('Acme')
  await ada.getByLabel('Your name').fill('Ada Lovelace')
  await ada.getByLabel('Email').fill(email)
  await ada.getByLabel(/^Password/).fill('a long password')
  await ada.getByRole('button', { name: 'Create workspace' }).click()
  await ada.waitForURL('**/board')
  await ada.getByTestId('connection').getByText('Online').waitFor()

  // A project from the admin page, then tasks created inline on the board.
  await ada.getByRole('link', { name: 'Admin', exact: true }).click()
  await ada.getByRole('link', { name: 'Projects', exact: true }).click()
  await ada.getByLabel('Name', { exact: true }).fill('Launch')
  await ada.getByRole('button', { name: 'Create project' }).click()
  await ada.locator('[data-project="Launch"]').waitFor()
  await noSeriousViolations(t, ada, 'admin-projects')
  await ada.getByRole('link', { name: 'Board', exact: true }).click()
  await ada.getByLabel('Project').selectOption({ label: 'Launch' })
  for (const title of ['Write the launch post', 'Fix the login bug', 'Plan the demo']) {
    await ada.getByLabel('New task in To do').fill(title)
    await ada.getByLabel('New task in To do').press('Enter')
  }
  const todo = ada.locator('.column[data-status="todo"]')
  for (const title of ['Write the launch post', 'Fix the login bug', 'Plan the demo']) await todo.getByRole('link', { name: title }).waitFor()
  const token = (await api(app.url).post('/api/auth/login', { email, password: 'a long password', device: { name: 'test', platform: 'test' } })).body.accessToken
  const server = async () => (await api(app.url, token).get('/api/tasks?limit=200')).body.items as { id: string; title: string; status: string; projectId: string }[]
  await t.resolveMatch(
    (async () => {
      for (;;) {
        const items = await server()
        if (items.length === 3) return items.map((x) => x.title).sort()
        await new Promise((r) => setTimeout(r, 100))
      }
    })(),
    ['Fix the login bug', 'Plan the demo', 'Write the launch post'],
    'the three tasks are on the server',
  )
  await noSeriousViolations(t, ada, 'board')

  // A teammate in another browser sees the board; a card dragged by Ada moves there.
  const grace = await addMember(app.url, token, 'member')
  const bob = watchErrors(await (await newContext(browser, t)).newPage(), errors)
  await bob.goto(app.url + '/login')
  await bob.getByLabel('Email').fill(grace.user.email)
  await bob.getByLabel('Password').fill(grace.password)
  await bob.getByRole('button', { name: 'Sign in' }).click()
  await bob.waitForURL('**/board')
  const card = (page: Page, status: string, title: string) => page.locator(`.column[data-status="${status}"]`).getByRole('link', { name: title })
  await card(bob, 'todo', 'Fix the login bug').waitFor()
  await card(ada, 'todo', 'Fix the login bug').dragTo(ada.locator('.column[data-status="in_progress"]'))
  await card(ada, 'in_progress', 'Fix the login bug').waitFor()
  await card(bob, 'in_progress', 'Fix the login bug').waitFor()
  t.pass('a card dragged in one browser moved in the other')

  // Keyboard only: Tab to a card, Alt+→ moves it; the inline form takes a task.
  await ada.keyboard.press('Escape')
  await card(ada, 'todo', 'Plan the demo').focus()
  await ada.keyboard.press('Alt+ArrowRight')
  await card(ada, 'in_progress', 'Plan the demo').waitFor()
  await card(bob, 'in_progress', 'Plan the demo').waitFor()
  await ada.getByLabel('New task in In review').focus()
  await ada.keyboard.type('Typed with the keyboard')
  await ada.keyboard.press('Enter')
  await card(bob, 'in_review', 'Typed with the keyboard').waitFor()
  // And to the task page: Enter on a focused card opens it; Tab reaches the title.
  await card(ada, 'in_review', 'Typed with the keyboard').focus()
  await ada.keyboard.press('Enter')
  await ada.waitForURL('**/tasks/*')
  await ada.locator('#title').waitFor()
  let reachedTitle = false
  for (let i = 0; i < 30 && !reachedTitle; i++) {
    await ada.keyboard.press('Tab')
    reachedTitle = await ada.evaluate(() => document.activeElement?.id === 'title')
  }
  t.ok(reachedTitle, 'Tab reaches the title field')
  await ada.keyboard.press('End')
  await ada.keyboard.type(' now')
  await ada.locator('#description').focus()
  await ada.keyboard.type('Details typed live.')
  await ada.getByLabel('Status').selectOption('done')
  await ada.getByLabel('Comment', { exact: true }).fill('Looks good')
  await ada.getByRole('button', { name: 'Comment', exact: true }).click()
  await ada.locator('.comment').getByText('Looks good').waitFor()
  await ada.locator('.timeline li').filter({ hasText: 'status' }).first().waitFor()
  await noSeriousViolations(t, ada, 'task')
  await card(bob, 'done', 'Typed with the keyboard now').waitFor()

  // Dashboard: the figures shown equal GET /api/stats and a direct count in PostgreSQL.
  await ada.getByRole('link', { name: 'Dashboard' }).click()
  await ada.locator('[data-figure="tasks"]').waitFor()
  const stats = (await api(app.url, token).get('/api/stats')).body
  const sql = postgres(app.databaseUrl, { max: 1 })
  t.teardown(() => sql.end())
  const [direct] = await sql`select count(*)::int as tasks, count(*) filter (where status not in ('done', 'cancelled'))::int as open,
    count(*) filter (where status = 'done')::int as done from tasks where org_id = ${(await api(app.url, token).get('/api/users/me')).body.orgId} and not deleted`
  const figure = async (id: string) => Number(await ada.locator(`[data-figure="${id}"]`).textContent())
  t.equal(await figure('tasks'), stats.totals.tasks, 'tasks shown = /api/stats')
  t.equal(stats.totals.tasks, direct.tasks, '/api/stats = direct count')
  t.equal(await figure('open'), direct.open, 'open shown = direct count')
  t.equal(Number(await ada.locator('[data-chart="status"] g[data-label="Done"]').getAttribute('data-value')), direct.done, 'the Done bar = direct count')
  t.equal(await figure('created-30d'), stats.perDay.reduce((n: number, d: { created: number }) => n + d.created, 0), 'created over 30 days = /api/stats')
  await noSeriousViolations(t, ada, 'dashboard')

  // Admin pages, then a deactivation: the teammate's open page ends signed out.
  for (const [section, name] of [['users', 'admin-users'], ['devices', 'admin-devices'], ['sync-log', 'admin-sync-log'], ['conflicts', 'admin-conflicts']] as const) {
    await ada.goto(`${app.url}/admin/${section}`)
    await ada.locator('h1', { hasText: 'Admin' }).waitFor()
    await ada.locator('table, .muted, .conflict-list').first().waitFor()
    await noSeriousViolations(t, ada, name)
  }
  await ada.goto(`${app.url}/admin/users`)
  ada.once('dialog', (d) => void d.accept())
  await ada.locator(`tr[data-user="${grace.user.email}"]`).getByRole('button', { name: 'Deactivate' }).click()
  await bob.waitForURL('**/login', { timeout: 30_000 })
  await bob.getByRole('alert').getByText('session ended').waitFor()
  t.pass("the deactivated user's page ended signed out")
  t.same(errors, [], 'no error in any page')
})
