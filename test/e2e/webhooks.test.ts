/**
 * Admin · Webhooks in real Chromium, with the keyboard alone: add an endpoint
 * (a real receiver on loopback), read its secret once, send a test event that the
 * receiver verifies with the Standard Webhooks library, open the delivery log.
 * The page passes axe-core and is photographed.
 */
import t from 'tap'
import { registerOwner, startTestApp } from '../helpers/app.js'
import { axe, ensureWebBuilt, keyboardGaps, launch, newContext, shot, watchErrors } from './browser.js'
import { signIn } from './session.js'
import { startReceiver } from '../events/receiver.js'

await ensureWebBuilt()

t.test('admin webhooks page: add, test, deliveries; keyboard only; axe-clean', async (t) => {
  const app = await startTestApp(t, { env: { WEBHOOK_ALLOW_PRIVATE: 'true', EVENT_POLL_MS: '20', DUE_SCAN_INTERVAL_S: '0' } })
  const owner = await registerOwner(app.url)
  const rx = await startReceiver(t)
  const browser = await launch(t)
  const errors: string[] = []
  const page = watchErrors(await (await newContext(browser, t)).newPage(), errors)
  await signIn(page, app.url, owner.user.email, owner.password)
  await page.goto(`${app.url}/admin/webhooks`)
  await page.locator('h1', { hasText: 'Admin · Webhooks' }).waitFor()
  await page.getByText('No webhook endpoints yet.').waitFor()
  t.same(await axe(page), [], 'axe: the empty page')

  await page.getByLabel('URL').focus()
  await page.keyboard.type(rx.url)
  await page.keyboard.press('Enter')
  const secret = await page.locator('[data-secret]').textContent()
  t.match(secret, /^whsec_/, 'the secret is shown once')
  rx.secret = secret!
  const row = page.locator(`tr[data-endpoint="${rx.url}"]`)
  await row.waitFor()
  t.match(await row.textContent(), /\*.*Active/, 'every event, active')

  await row.getByRole('button', { name: 'Send test' }).focus()
  await page.keyboard.press('Enter')
  await rx.waitFor((xs) => xs.some((x) => x.type === 'webhook.test' && x.verified), 'the verified test event')
  t.pass('the receiver verified the test event')

  await row.getByRole('button', { name: 'Deliveries' }).focus()
  await page.keyboard.press('Enter')
  await page.locator('h2', { hasText: 'Deliveries to' }).waitFor()
  for (;;) {
    await page.getByRole('button', { name: 'Refresh' }).click()
    if (await page.locator('tr[data-delivery="delivered"]').count()) break
  }
  t.match(await page.locator('tr[data-delivery="delivered"]').first().textContent(), /webhook\.test/, 'the log shows the delivery')
  t.same(await axe(page), [], 'axe: endpoint, secret and delivery log')
  await shot(page, 'admin-webhooks')
  t.same(await keyboardGaps(page), { unreached: [], noOutline: [] }, 'keyboard: Tab reaches every control, each showing its focus')
  t.same(errors, [], 'no page errors')
})
