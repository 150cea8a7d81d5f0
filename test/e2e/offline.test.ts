/**
 * Offline for real: one browser reaches the app through a proxy the test cuts.
 * Offline it edits the title, changes the status and writes a comment, then
 * reloads: the service worker opens the app, IndexedDB shows the task with the
 * edits still pending. Back online, the other browser shows all three.
 */
import t from 'tap'
import { api, registerOwner, startTestApp } from '../helpers/app.js'
import { axe, ensureWebBuilt, launch, newContext, shot, watchErrors } from './browser.js'
import { cutProxy } from './cut-proxy.js'
import { signIn } from './session.js'

await ensureWebBuilt()

t.test('offline edits survive a reload from the service worker and reach the other browser when the network returns', async (t) => {
  const app = await startTestApp(t)
  const owner = await registerOwner(app.url)
  const task = (await api(app.url, owner.accessToken).post('/api/tasks', { title: 'Ship it' })).body
  const proxy = await cutProxy(app.url, t)
  const browser = await launch(t)
  const errors: string[] = []
  const context = await newContext(browser, t)
  const away = watchErrors(await context.newPage(), errors)
  const home = watchErrors(await (await newContext(browser, t)).newPage(), errors)
  await signIn(away, proxy.url, owner.user.email, owner.password)
  await signIn(home, app.url, owner.user.email, owner.password)
  await away.goto(`${proxy.url}/tasks/${task.id}`)
  await home.goto(`${app.url}/tasks/${task.id}`)
  for (const p of [away, home]) await p.getByTestId('connection').getByText('Online').waitFor()
  // The service worker is installed and holds the app shell.
  await away.evaluate(async () => {
    await navigator.serviceWorker.ready
  })

  proxy.cut()
  await context.setOffline(true)
  await away.getByTestId('connection').getByText('Offline').waitFor()
  await away.locator('#title').focus()
  await away.keyboard.press('End')
  await away.keyboard.type(' (edited offline)')
  await away.getByLabel('Status').selectOption('in_review')
  await away.getByLabel('Comment', { exact: true }).fill('Written on the train')
  await away.getByRole('button', { name: 'Comment', exact: true }).click()
  await away.getByTestId('pending').waitFor()

  await away.reload()
  await away.locator('#title').waitFor()
  await away.waitForFunction(() => (document.querySelector('#title') as HTMLInputElement).value === 'Ship it (edited offline)')
  t.equal(await away.getByLabel('Status').inputValue(), 'in_review', 'the status change is there after the reload')
  await away.locator('.comment').getByText('Written on the train').waitFor()
  const pending = await away.getByTestId('pending').textContent()
  t.match(pending, /edits? waiting/, `the edits are still pending after the reload (${pending?.trim()})`)
  t.equal(await away.evaluate(() => !!navigator.serviceWorker.controller), true, 'the page came from the service worker')
  t.same(await axe(away), [], 'axe: the offline page')
  await shot(away, 'task-offline')
  await away.goto(`${proxy.url}/board`)
  await away.locator('.card').filter({ hasText: 'Ship it (edited offline)' }).waitFor()
  t.same(await axe(away), [], 'axe: the board offline')
  await shot(away, 'board-offline')
  t.pass('the board opens offline from the service worker and shows the task from IndexedDB')
  await away.goto(`${proxy.url}/tasks/${task.id}`)
  await away.locator('#title').waitFor()

  proxy.restore()
  await context.setOffline(false)
  await away.getByTestId('connection').getByText('Online').waitFor({ timeout: 30_000 })
  await home.waitForFunction(() => (document.querySelector('#title') as HTMLInputElement).value === 'Ship it (edited offline)', undefined, { timeout: 30_000 })
  await home.waitForFunction(() => (document.querySelector('select') as HTMLSelectElement | null)?.value === 'in_review', undefined, { timeout: 30_000 })
  await home.locator('.comment').getByText('Written on the train').waitFor({ timeout: 30_000 })
  t.pass('the other browser shows the title, the status and the comment')
  const server = (await api(app.url, owner.accessToken).get(`/api/tasks/${task.id}`)).body
  t.match(server, { title: 'Ship it (edited offline)', status: 'in_review' })
  t.same(errors, [], 'no error in any page')
})
