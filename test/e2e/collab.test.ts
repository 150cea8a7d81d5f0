/**
 * Live collaboration in real Chromium: two people type into one title at the
 * same time and end with the same text holding both insertions, each caret
 * where its owner left it; two tabs of one person on one storage both edit and
 * nothing is lost.
 */
import t from 'tap'
import { addMember, api, registerOwner, startTestApp } from '../helpers/app.js'
import { ensureWebBuilt, launch, newContext, watchErrors } from './browser.js'
import { caret, signIn } from './session.js'

await ensureWebBuilt()

t.test('two people type into the same title at once: identical text with both insertions, carets where each left them', async (t) => {
  const app = await startTestApp(t)
  const owner = await registerOwner(app.url, { displayName: 'Ada' })
  const mate = await addMember(app.url, owner.accessToken, 'member')
  const task = (await api(app.url, owner.accessToken).post('/api/tasks', { title: 'hello world' })).body
  const browser = await launch(t)
  const errors: string[] = []
  const a = watchErrors(await (await newContext(browser, t)).newPage(), errors)
  const b = watchErrors(await (await newContext(browser, t)).newPage(), errors)
  await signIn(a, app.url, owner.user.email, owner.password)
  await signIn(b, app.url, mate.user.email, mate.password)
  await Promise.all([a.goto(`${app.url}/tasks/${task.id}`), b.goto(`${app.url}/tasks/${task.id}`)])
  for (const p of [a, b]) {
    await p.getByTestId('connection').getByText('Online').waitFor()
    await p.waitForFunction(() => (document.querySelector('#title') as HTMLInputElement | null)?.value === 'hello world')
  }
  // Ada types at the start, her teammate at the end, at the same time.
  await a.locator('#title').focus()
  await a.keyboard.press('Home')
  await b.locator('#title').focus()
  await b.keyboard.press('End')
  // Each sees the other here, and where.
  await a.getByTestId('presence').getByText('in the title').waitFor()
  await b.getByTestId('presence').getByText('in the title').waitFor()
  await Promise.all([a.keyboard.type('Ada says ', { delay: 15 }), b.keyboard.type(', from Bob', { delay: 15 })])
  const expected = 'Ada says hello world, from Bob'
  for (const p of [a, b]) await p.waitForFunction((want) => (document.querySelector('#title') as HTMLInputElement).value === want, expected, { timeout: 15_000 })
  const server = (await api(app.url, owner.accessToken).get(`/api/tasks/${task.id}`)).body
  t.equal(server.title, expected, 'the server holds both insertions')
  const ca = await caret(a, '#title')
  const cb = await caret(b, '#title')
  t.same([ca.start, ca.end], [9, 9], "Ada's caret is right after what she typed, not pushed by the other's insert")
  t.same([cb.start, cb.end], [[...expected].length, [...expected].length], "the teammate's caret is at the end, moved by Ada's insert before it")
  t.same(errors, [])
})

t.test('two tabs of one person on one storage both edit: nothing is lost', async (t) => {
  const app = await startTestApp(t)
  const owner = await registerOwner(app.url)
  const task = (await api(app.url, owner.accessToken).post('/api/tasks', { title: 'two tabs' })).body
  const browser = await launch(t)
  const context = await newContext(browser, t)
  const one = await context.newPage()
  await signIn(one, app.url, owner.user.email, owner.password)
  const two = await context.newPage()
  await Promise.all([one.goto(`${app.url}/tasks/${task.id}`), two.goto(`${app.url}/tasks/${task.id}`)])
  for (const p of [one, two]) await p.getByTestId('connection').getByText('Online').waitFor()
  await one.locator('#description').focus()
  await two.locator('#title').focus()
  await two.keyboard.press('End')
  await Promise.all([
    (async () => {
      await one.keyboard.type('first tab notes', { delay: 10 })
      await one.getByLabel('Status').selectOption('in_progress')
    })(),
    (async () => {
      await two.keyboard.type(' from tab two', { delay: 10 })
      await two.getByLabel('Priority').selectOption('3')
    })(),
  ])
  const want = { title: 'two tabs from tab two', description: 'first tab notes', status: 'in_progress', priority: 3 }
  const deadline = Date.now() + 20_000
  let server: Record<string, unknown> = {}
  while (Date.now() < deadline) {
    server = (await api(app.url, owner.accessToken).get(`/api/tasks/${task.id}`)).body
    if (Object.entries(want).every(([k, v]) => server[k] === v)) break
    await new Promise((r) => setTimeout(r, 200))
  }
  t.match(server, want, 'the server has every edit of both tabs')
  for (const p of [one, two]) {
    await p.waitForFunction((w) => (document.querySelector('#title') as HTMLInputElement).value === w.title && (document.querySelector('#description') as HTMLTextAreaElement).value === w.description, want, { timeout: 10_000 })
  }
  t.pass('both tabs show every edit')
  const ops = (await api(app.url, owner.accessToken).get(`/api/tasks/${task.id}/ops?from=2`)).body.ops as { clientId: string }[]
  t.equal(new Set(ops.map((o) => o.clientId)).size, 2, 'each tab wrote as its own writer (two clientIds in the op log)')
})
