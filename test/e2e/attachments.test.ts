/**
 * Attachments in the web app, in real Chromium: a file chosen with the
 * keyboard uploads with a progress bar (held mid-upload at the network, so the
 * bar is seen between 0 and 100 %), then appears in the other person's
 * browser; an image dropped on the drop zone appears there with its thumbnail.
 * The attachment UI, uploading and done, passes axe-core and is photographed.
 */
import t from 'tap'
import sharp from 'sharp'
import { randomBytes } from 'node:crypto'
import type { FileChooser } from 'playwright-core'
import { addMember, api, registerOwner, startTestApp } from '../helpers/app.js'
import { axe, ensureWebBuilt, keyboardGaps, launch, newContext, shot, watchErrors } from './browser.js'
import { signIn } from './session.js'

await ensureWebBuilt()

t.test('attachments: chosen with the keyboard with progress, dropped with a thumbnail, live in the other browser', async (t) => {
  // Small chunks: a 300 KB file goes in 5 of them, so progress has steps to show.
  const app = await startTestApp(t, { env: { ATTACHMENT_CHUNK_BYTES: '65536' } })
  const owner = await registerOwner(app.url, { displayName: 'Ada' })
  const mate = await addMember(app.url, owner.accessToken, 'member')
  const task = (await api(app.url, owner.accessToken).post('/api/tasks', { title: 'Ship the files' })).body
  const browser = await launch(t)
  const errors: string[] = []
  // Ada's requests are held at the network by the test (page.route), which a service worker would bypass.
  const adaContext = await browser.newContext({ viewport: { width: 1280, height: 860 }, locale: 'en-GB', timezoneId: 'UTC', serviceWorkers: 'block' })
  adaContext.setDefaultTimeout(15_000)
  t.teardown(() => adaContext.close().catch(() => {}))
  const ada = watchErrors(await adaContext.newPage(), errors)
  const bob = watchErrors(await (await newContext(browser, t)).newPage(), errors)
  await signIn(ada, app.url, owner.user.email, owner.password)
  await signIn(bob, app.url, mate.user.email, mate.password)
  await Promise.all([ada.goto(`${app.url}/tasks/${task.id}`), bob.goto(`${app.url}/tasks/${task.id}`)])
  for (const p of [ada, bob]) await p.getByTestId('connection').getByText('Online').waitFor()

  // The third chunk waits until the test lets it go.
  let letGo!: () => void
  const held = new Promise<void>((r) => (letGo = r))
  let heldSeen!: () => void
  const chunkHeld = new Promise<void>((r) => (heldSeen = r))
  await ada.route('**/attachments/*/chunks/2', async (route) => {
    heldSeen()
    await held
    await route.continue()
  })

  // Keyboard only: Tab to the file input of the drop zone, Space opens the chooser.
  const notes = randomBytes(300 * 1024)
  let reached = false
  for (let i = 0; i < 60 && !reached; i++) {
    await ada.keyboard.press('Tab')
    reached = await ada.evaluate(() => (document.activeElement as HTMLInputElement | null)?.type === 'file')
  }
  t.ok(reached, 'Tab reaches the file input of the drop zone')
  // Space on the focused file input opens the chooser; a re-render on a loaded machine can take the
  // focus between the Tab and the key, so the input is re-focused by keyboard and the key pressed again.
  let chooser: FileChooser | null = null
  for (let attempt = 0; attempt < 3 && !chooser; attempt++) {
    for (let i = 0; i < 60 && !(await ada.evaluate(() => (document.activeElement as HTMLInputElement | null)?.type === 'file')); i++) {
      await ada.keyboard.press('Tab')
    }
    ;[chooser] = await Promise.all([ada.waitForEvent('filechooser', { timeout: 8000 }).catch(() => null), ada.keyboard.press('Space')])
  }
  if (!chooser) throw new Error('Space on the focused file input never opened the file chooser')
  await chooser.setFiles({ name: 'notes.bin', mimeType: 'application/octet-stream', buffer: notes })

  // Progress: the bar shows the chunks that went (all but the held one: 240 KB of 300), neither 0 nor done.
  await chunkHeld
  const bar = ada.getByRole('progressbar', { name: 'Uploading notes.bin' })
  await ada.waitForFunction((want) => {
    const p = document.querySelector('progress[aria-label="Uploading notes.bin"]') as HTMLProgressElement | null
    return !!p && p.value === want
  }, notes.length - 65536)
  t.equal(Number(await bar.getAttribute('max')), notes.length, 'the bar counts the bytes of the file')
  await ada.locator('.upload').getByText('79 %').waitFor()
  t.equal(await bob.locator('[data-attachment="notes.bin"]').count(), 0, 'not in the other browser before it is complete')
  t.same(await axe(ada), [], 'axe: no serious or critical violation on the task page while uploading')
  await shot(ada, 'task-attachment-uploading')

  letGo()
  await bob.locator('[data-attachment="notes.bin"]').getByText('300.0 KB').waitFor()
  await bar.waitFor({ state: 'detached' })
  await ada.locator('[data-attachment="notes.bin"]').waitFor()
  t.pass('the chosen file appeared in the other browser once uploaded')

  // Drag and drop an image: both browsers show its thumbnail.
  const png = await sharp({ create: { width: 320, height: 200, channels: 3, background: '#2563eb' } })
    .composite([{ input: { create: { width: 120, height: 80, channels: 3, background: '#f0a500' } }, left: 40, top: 40 }])
    .png()
    .toBuffer()
  const dataTransfer = await ada.evaluateHandle((b64) => {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))
    const dt = new DataTransfer()
    dt.items.add(new File([bytes], 'diagram.png', { type: 'image/png' }))
    return dt
  }, png.toString('base64'))
  const zone = ada.getByTestId('dropzone')
  await zone.dispatchEvent('dragenter', { dataTransfer })
  await zone.dispatchEvent('dragover', { dataTransfer })
  t.match(await zone.getAttribute('class'), /\bover\b/, 'the drop zone shows that it takes the drop')
  await zone.dispatchEvent('drop', { dataTransfer })
  for (const p of [ada, bob]) {
    const thumb = p.locator('[data-attachment="diagram.png"] img.thumb')
    await thumb.waitFor()
    await p.waitForFunction(() => {
      const img = document.querySelector('[data-attachment="diagram.png"] img.thumb') as HTMLImageElement | null
      return !!img && img.complete && img.naturalWidth > 0
    })
  }
  const natural = await bob.locator('[data-attachment="diagram.png"] img.thumb').evaluate((img: HTMLImageElement) => [img.naturalWidth, img.naturalHeight])
  t.same(natural, [256, 160], "the other browser shows the server's thumbnail (256 px wide, the image's proportions)")

  const listed = (await api(app.url, owner.accessToken).get(`/api/tasks/${task.id}/attachments`)).body.items as { name: string; size: number }[]
  t.same(
    listed.map((a) => [a.name, a.size]).sort(),
    [
      ['diagram.png', png.length],
      ['notes.bin', notes.length],
    ],
    'the server holds both files, whole',
  )
  t.same(await axe(bob), [], 'axe: no serious or critical violation on the task page with attachments')
  await bob.locator('[data-attachment="diagram.png"]').scrollIntoViewIfNeeded()
  await shot(bob, 'task-attachments')
  t.same(await keyboardGaps(bob), { unreached: [], noOutline: [] }, 'keyboard: Tab reaches every control of the task page with attachments, each showing its focus')
  t.same(errors, [], 'no error in any page')
})
