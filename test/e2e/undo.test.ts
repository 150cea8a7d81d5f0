/**
 * Undo in the web app, in real Chromium: Ada types into the title, her
 * teammate adds to it and sets the priority; Ada's Ctrl+Z takes back only her
 * typing (the teammate's text and priority stay), the Redo button brings it back.
 */
import t from 'tap'
import { addMember, api, registerOwner, startTestApp } from '../helpers/app.js'
import { ensureWebBuilt, launch, newContext, watchErrors } from './browser.js'
import { signIn } from './session.js'

await ensureWebBuilt()

t.test('Ctrl+Z undoes only my own edits; Redo brings them back', async (t) => {
  const app = await startTestApp(t)
  const owner = await registerOwner(app.url, { displayName: 'Ada' })
  const mate = await addMember(app.url, owner.accessToken, 'member')
  const task = (await api(app.url, owner.accessToken).post('/api/tasks', { title: 'plan' })).body
  const browser = await launch(t)
  const errors: string[] = []
  const a = watchErrors(await (await newContext(browser, t)).newPage(), errors)
  await signIn(a, app.url, owner.user.email, owner.password)
  await a.goto(`${app.url}/tasks/${task.id}`)
  await a.getByTestId('connection').getByText('Online').waitFor()
  await a.waitForFunction(() => (document.querySelector('#title') as HTMLInputElement | null)?.value === 'plan')
  t.ok(await a.getByRole('button', { name: 'Undo' }).isDisabled(), 'nothing to undo yet')
  await a.locator('#title').focus()
  await a.keyboard.press('End')
  await a.keyboard.type(' v2', { delay: 15 })
  await a.waitForFunction(() => !(document.querySelector('.undo-bar button') as HTMLButtonElement).disabled)
  // The teammate, over REST, after Ada's edit reached the server.
  const deadline = Date.now() + 15_000
  while ((await api(app.url, owner.accessToken).get(`/api/tasks/${task.id}`)).body.title !== 'plan v2') {
    if (Date.now() > deadline) throw new Error('Ada\'s edit never reached the server')
    await new Promise((r) => setTimeout(r, 100))
  }
  const mine = api(app.url, mate.accessToken)
  t.equal((await mine.patch(`/api/tasks/${task.id}`, { title: 'Team plan v2', priority: 3 })).status, 200)
  await a.waitForFunction(() => (document.querySelector('#title') as HTMLInputElement).value === 'Team plan v2')

  await a.keyboard.press('Control+z')
  await a.waitForFunction(() => (document.querySelector('#title') as HTMLInputElement).value === 'Team plan')
  await a.getByRole('button', { name: 'Redo' }).click()
  await a.waitForFunction(() => (document.querySelector('#title') as HTMLInputElement).value === 'Team plan v2')
  await a.keyboard.press('Control+z')
  await a.waitForFunction(() => (document.querySelector('#title') as HTMLInputElement).value === 'Team plan')
  const until = Date.now() + 15_000
  let server = (await mine.get(`/api/tasks/${task.id}`)).body
  while (server.title !== 'Team plan' && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 100))
    server = (await mine.get(`/api/tasks/${task.id}`)).body
  }
  t.equal(server.title, 'Team plan', "the server has Ada's typing undone and the teammate's word kept")
  t.equal(server.priority, 3, "the teammate's priority stays")
  t.same(errors, [])
})
