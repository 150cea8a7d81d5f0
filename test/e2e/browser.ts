/**
 * End-to-end tests drive Debian's Chromium (/usr/bin/chromium, never a
 * downloaded browser) through playwright-core against the real app serving the
 * built web app. A browser that cannot start fails the test: it never skips.
 */
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core'
import { existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
/** Screenshots of every page, a test artifact (git-ignored). */
export const SHOTS = join(ROOT, 'artifacts', 'screenshots')

interface Teardown {
  teardown(fn: () => unknown): void
}

/** Builds dist/web when it is missing or older than its sources; one build at a time across test files. */
export async function ensureWebBuilt(): Promise<void> {
  const { buildWeb, newestSource } = (await import(join(ROOT, 'web', 'build.mjs'))) as { buildWeb(): Promise<unknown>; newestSource(): number }
  const index = join(ROOT, 'dist', 'web', 'index.html')
  const stale = () => !existsSync(index) || statSync(index).mtimeMs < newestSource()
  if (!stale()) return
  const lock = join(ROOT, 'dist', '.web-build.lock')
  mkdirSync(join(ROOT, 'dist'), { recursive: true })
  for (let i = 0; ; i++) {
    try {
      mkdirSync(lock)
      break
    } catch {
      // Another test file is building: wait for it (a lock older than a minute is stale).
      if (existsSync(lock) && Date.now() - statSync(lock).mtimeMs > 60_000) rmSync(lock, { recursive: true, force: true })
      await sleep(200)
      if (!stale()) return
    }
  }
  try {
    if (stale()) await buildWeb()
  } finally {
    rmSync(lock, { recursive: true, force: true })
  }
}

export async function launch(t: Teardown): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install -y chromium (.ci/run does it)`)
  // playwright-core gives every launch its own fresh --user-data-dir.
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
  })
  t.teardown(() => browser.close())
  return browser
}

/** A fresh browser profile (cookies, storage, service workers of its own), like a second person's browser. */
export async function newContext(browser: Browser, t: Teardown): Promise<BrowserContext> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 }, locale: 'en-GB', timezoneId: 'UTC' })
  context.setDefaultTimeout(15_000)
  t.teardown(() => context.close().catch(() => {}))
  return context
}

/** Fails the test on any uncaught error in the page. */
export function watchErrors(page: Page, errors: string[]): Page {
  page.on('pageerror', (e) => errors.push(`${page.url()}: ${e.message}`))
  return page
}

const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8')

export interface AxeViolation {
  id: string
  impact: string | null
  help: string
  nodes: { target: string[] }[]
}

/** axe-core injected into the page (through the debugger, so the page's CSP stays on): serious and critical violations. */
export async function axe(page: Page): Promise<AxeViolation[]> {
  await page.evaluate(axeSource)
  const result = await page.evaluate(async () => {
    const r = await (globalThis as unknown as { axe: { run(ctx: unknown, opts: unknown): Promise<{ violations: AxeViolation[] }> } }).axe.run(document, { resultTypes: ['violations'] })
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => ({ target: n.target })) }))
  })
  return result.filter((v) => v.impact === 'serious' || v.impact === 'critical')
}

export async function shot(page: Page, name: string): Promise<string> {
  mkdirSync(SHOTS, { recursive: true })
  const path = join(SHOTS, `${name}.png`)
  await page.screenshot({ path, fullPage: false })
  return path
}

/**
 * Keyboard alone: Tab from the top of the page through every control. Answers
 * the visible, enabled controls that Tab never reached, and those that showed no
 * focus outline when reached (both empty on a page usable with the keyboard).
 */
export async function keyboardGaps(page: Page): Promise<{ unreached: string[]; noOutline: string[] }> {
  const count = await page.evaluate(() => {
    const controls = Array.from(document.querySelectorAll<HTMLElement>('a[href], button, input, select, textarea, [tabindex]')).filter(
      (el) => el.tabIndex >= 0 && !(el as HTMLButtonElement).disabled && !el.closest('fieldset[disabled], [inert]') && el.getClientRects().length > 0 && getComputedStyle(el).visibility !== 'hidden',
    )
    controls.forEach((el, i) => (el.dataset.kb = String(i)))
    ;(document.activeElement as HTMLElement | null)?.blur()
    return controls.length
  })
  const reached = new Set<string>()
  const noOutline = new Set<string>()
  for (let i = 0; i < count + 5; i++) {
    await page.keyboard.press('Tab')
    const at = await page.evaluate(() => {
      const el = document.activeElement as HTMLElement | null
      if (!el?.dataset.kb) return null
      // A visually hidden control (a file input) shows its focus on a box around it (:focus-within).
      // (No named inner functions: tsx would wrap them in a helper the page lacks.)
      const boxes: Element[] = [el]
      if (el.getBoundingClientRect().width <= 1) for (let up = el.parentElement; up && boxes.length < 4; up = up.parentElement) boxes.push(up)
      const shown = boxes.some((e) => {
        const s = getComputedStyle(e)
        return (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0) || s.boxShadow !== 'none'
      })
      return { kb: el.dataset.kb, outlined: shown }
    })
    if (!at) continue
    reached.add(at.kb)
    if (!at.outlined) noOutline.add(at.kb)
  }
  const describe = (ids: string[]) =>
    page.evaluate(
      (ids) =>
        ids.map((id) => {
          const el = document.querySelector<HTMLElement>(`[data-kb="${id}"]`)!
          return `${el.tagName.toLowerCase()}${el.getAttribute("type") ? "[type=" + el.getAttribute("type") + "]" : ""}${el.id ? "#" + el.id : ""} "${(el.getAttribute('aria-label') ?? el.textContent ?? '').trim().slice(0, 40)}"`
        }),
      ids,
    )
  const all = Array.from({ length: count }, (_, i) => String(i))
  return { unreached: await describe(all.filter((id) => !reached.has(id))), noOutline: await describe([...noOutline]) }
}
