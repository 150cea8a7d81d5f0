/**
 * Tabs in real Chromium: a tab closed with edits it could not send yet (its
 * socket never reached the server) has them delivered by the tab still open,
 * which holds no lock of the closed tab until the browser releases it (Web
 * Locks), under the closed tab's own clientId.
 */
import t from 'tap'
import { api, registerOwner, startTestApp } from '../helpers/app.js'
import { ensureWebBuilt, launch, newContext, watchErrors } from './browser.js'
import { signIn } from './session.js'

await ensureWebBuilt()

t.test("a tab closed with unsent edits: the open tab delivers them under the closed tab's clientId", async (t) => {
  const app = await startTestApp(t)
  const owner = await registerOwner(app.url)
  const task = (await api(app.url, owner.accessToken).post('/api/tasks', { title: 'adopted' })).body
  const browser = await launch(t)
  const context = await newContext(browser, t)
  const errors: string[] = []
  const one = watchErrors(await context.newPage(), errors)
  await signIn(one, app.url, owner.user.email, owner.password)
  await one.goto(`${app.url}/tasks/${task.id}`)
  await one.getByTestId('connection').getByText('Online').waitFor()
  await one.waitForFunction(() => (document.querySelector('#title') as HTMLInputElement | null)?.value === 'adopted')

  // The second tab's socket never reaches the server: whatever it edits stays in its queue.
  const two = watchErrors(await context.newPage(), errors)
  await two.routeWebSocket(/\/ws/, () => {})
  await two.goto(`${app.url}/tasks/${task.id}`)
  // It shows the task from the snapshot the first tab stored (its new writer slot was seeded with it).
  await two.waitForFunction(() => (document.querySelector('#title') as HTMLInputElement | null)?.value === 'adopted')
  await two.locator('#title').focus()
  await two.keyboard.press('End')
  await two.keyboard.type(' by tab two', { delay: 10 })
  await two.getByTestId('pending').waitFor()
  // Recorded in IndexedDB (in the second tab's own slot) before the tab goes away.
  const slotOfTwo = await two.waitForFunction(
    ({ userId, taskId }) =>
      new Promise<string | null>((resolve) => {
        const req = indexedDB.open(`tasksync-${userId}`)
        req.onsuccess = () => {
          const tx = req.result.transaction('kv', 'readonly')
          const all = tx.objectStore('kv').getAllKeys()
          const values = tx.objectStore('kv').getAll()
          tx.oncomplete = () => {
            req.result.close()
            // Its unsent op holds the typed text (no other slot has it: nothing was delivered yet).
            const i = all.result.findIndex((k, j) => String(k).endsWith(`:task:${taskId}`) && JSON.stringify(values.result[j]).includes('by tab two'))
            resolve(i >= 0 ? String(all.result[i]).split(':')[1] : null)
          }
        }
        req.onerror = () => resolve(null)
      }),
    { userId: owner.user.id, taskId: task.id },
  )
  const closedClientId = (await slotOfTwo.jsonValue()) as string
  t.ok(closedClientId, 'the edit is in the second tab’s writer slot')
  await two.close()

  // The first tab is told by the released lock and delivers the queue.
  await one.waitForFunction(() => (document.querySelector('#title') as HTMLInputElement).value === 'adopted by tab two', undefined, { timeout: 20_000 })
  const server = (await api(app.url, owner.accessToken).get(`/api/tasks/${task.id}`)).body
  t.equal(server.title, 'adopted by tab two', 'the server has the closed tab’s edit')
  const ops = (await api(app.url, owner.accessToken).get(`/api/tasks/${task.id}/ops?from=2`)).body.ops as { clientId: string }[]
  t.ok(ops.length > 0)
  t.same(new Set(ops.map((o) => o.clientId)), new Set([closedClientId]), 'committed as the closed tab’s own mutations')
  t.same(errors, [])
})
