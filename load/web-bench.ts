/**
 * `npm run bench:web`: the web app's figures in real Chromium against the real
 * server (production mode, PostgreSQL, Redis), on a fresh database dropped at
 * the end:
 *  - board: an organization with --tasks tasks (default 1,000, seeded like
 *    `npm run seed`); time from navigation start until every task is on the
 *    board (counted, the first cards of each column drawn) and the main thread is quiet (no long task for 500 ms), from
 *    Chromium's performance timeline; first visit (empty IndexedDB) and
 *    revisit (service worker and IndexedDB filled);
 *  - keystroke: one browser types into a title, the other sees the text change
 *    (p50/p95/max over --keys keystrokes, loopback);
 *  - bundle: the app's JavaScript, gzipped (from dist/web/build.json).
 * Options: --tasks 1000 --runs 5 --keys 100 --only board|keys --pg-url … --redis-url …
 */
import { parseArgs } from 'node:util'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { randomBytes } from 'node:crypto'
import postgres from 'postgres'
import type { Browser, Page } from 'playwright-core'
import { buildApp } from '../src/app.js'
import { loadConfig } from '../src/config/index.js'
import { openDatabase } from '../src/storage/db.js'
import { hashPassword } from '../src/auth/passwords.js'
import { seedData } from '../src/storage/seed-data.js'
import { ROOT, ensureWebBuilt, launch } from '../test/e2e/browser.js'
import { signIn } from '../test/e2e/session.js'

const { values: args } = parseArgs({
  options: {
    tasks: { type: 'string', default: '1000' },
    runs: { type: 'string', default: '5' },
    keys: { type: 'string', default: '100' },
    only: { type: 'string' },
    'pg-url': { type: 'string', default: process.env.LOAD_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres' },
    'redis-url': { type: 'string', default: process.env.LOAD_REDIS_URL ?? 'redis://127.0.0.1:6379' },
  },
})
const TASKS = Number(args.tasks)
const RUNS = Number(args.runs)
const KEYS = Number(args.keys)
const BOARD = args.only !== 'keys'
const TYPING = args.only !== 'board'

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]
}
const ms = (x: number) => `${Math.round(x)} ms`

/**
 * Installed before the app's scripts: long tasks and the moment the board holds
 * `want` cards. (A string: tsx would wrap a function's inner arrows in helpers the page lacks.)
 */
const boardProbe = (want: number) => `
  window.__longTasks = []
  window.__cardsAt = null
  const check = () => {
    // Every task on the board: the filter line counts them (long columns draw their first cards).
    if (document.querySelector('.count')?.textContent?.startsWith('${want} of ${want}') && document.querySelector('.card')) window.__cardsAt = performance.now()
    else setTimeout(check, 4)
  }
  setTimeout(check, 4)
  if (${!!process.env.WEB_BENCH_TRACE}) {
    const t = setInterval(() => { console.log('trace', Math.round(performance.now()), document.querySelectorAll('.card').length); if (window.__cardsAt) clearInterval(t) }, 250)
  }
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) window.__longTasks.push({ start: e.startTime, end: e.startTime + e.duration })
  }).observe({ entryTypes: ['longtask'] })
`

/** Sees the title's length change on the other browser (polled every millisecond). */
const titleWatch = `
  const el = document.querySelector('#title')
  window.__seen = {}
  let last = el.value.length
  setInterval(() => {
    if (el.value.length !== last) {
      last = el.value.length
      window.__seen[last] ??= performance.timeOrigin + performance.now()
    }
  }, 1)
`

/**
 * Both typing browsers: when each task op frame leaves (sender) or arrives (receiver) on the
 * socket, to split a keystroke's latency into sender, wire + server, and receiver.
 */
const wsProbe = `
  window.__wsSend = []
  window.__wsRecv = []
  const now = () => performance.timeOrigin + performance.now()
  const send = WebSocket.prototype.send
  WebSocket.prototype.send = function (d) {
    if (typeof d === 'string' && d.includes('"type":"op"')) window.__wsSend.push(now())
    return send.call(this, d)
  }
  const Native = WebSocket
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args)
      this.addEventListener('message', (e) => {
        if (typeof e.data === 'string' && e.data.includes('"type":"op"')) window.__wsRecv.push(now())
      })
    }
  }
`

/** Navigation start → all cards shown and 500 ms without a long task (the last long task's end, or the cards' time). */
async function measureBoard(page: Page, url: string): Promise<{ cards: number; interactive: number }> {
  await page.goto(url)
  await page.waitForFunction(() => (window as unknown as { __cardsAt: number | null }).__cardsAt !== null, undefined, { timeout: 60_000 }).catch(async (err) => {
    throw new Error(`${err.message}: ${await page.locator('.card').count()} cards, ${await page.locator('.count').textContent()}`)
  })
  // Quiet for 500 ms after the cards: wait, then read the timeline.
  for (;;) {
    const r = await page.evaluate(() => {
      const w = window as unknown as { __longTasks: { start: number; end: number }[]; __cardsAt: number }
      const lastEnd = w.__longTasks.reduce((m, t) => Math.max(m, t.end), 0)
      return { cards: w.__cardsAt, lastEnd, now: performance.now() }
    })
    const settled = Math.max(r.cards, r.lastEnd)
    if (r.now - settled >= 500) return { cards: r.cards, interactive: settled }
    await page.waitForTimeout(100)
  }
}

/** One browser types KEYS characters into a task's title, one at a time; the other sees each: the latencies. */
async function keystrokes(browser: Browser, url: string, org: { taskIds: string[]; users: { email: string; password: string }[] }): Promise<number[] & { parts?: Record<'sender' | 'wire' | 'receiver', number[]> }> {
  const task = org.taskIds[0]
  const owner = org.users[0]
  const [ca, cb] = [await browser.newContext(), await browser.newContext()]
  await ca.addInitScript(wsProbe)
  await cb.addInitScript(wsProbe)
  const [pa, pb] = [await ca.newPage(), await cb.newPage()]
  await signIn(pa, url, owner.email, owner.password)
  await signIn(pb, url, org.users[1].email, org.users[1].password)
  await Promise.all([pa.goto(`${url}/tasks/${task}`), pb.goto(`${url}/tasks/${task}`)])
  for (const p of [pa, pb]) await p.getByTestId('connection').getByText('Online').waitFor({ timeout: 30_000 })
  await pb.evaluate(titleWatch)
  await pa.locator('#title').focus()
  await pa.keyboard.press('End')
  const base = await pa.locator('#title').evaluate((el: HTMLInputElement) => el.value.length)
  await pa.evaluate(() => {
    const el = document.querySelector('#title') as HTMLInputElement
    const w = window as unknown as { __typed: Record<number, number> }
    w.__typed = {}
    // Captured on the document: before the app's own listener (and the renders its microtasks run).
    document.addEventListener('input', (e) => e.target === el && (w.__typed[el.value.length] = performance.timeOrigin + performance.now()), true)
  })
  for (let i = 0; i < KEYS; i++) {
    await pa.keyboard.type(String.fromCharCode(97 + (i % 26)))
    await pb.waitForFunction((n) => (document.querySelector('#title') as HTMLInputElement).value.length >= n, base + i + 1, { polling: 5 })
    await pa.waitForTimeout(30)
  }
  const typed = await pa.evaluate(() => (window as unknown as { __typed: Record<number, number> }).__typed)
  const seen = await pb.evaluate(() => (window as unknown as { __seen: Record<number, number> }).__seen)
  const lat = Object.keys(typed).map((k) => seen[Number(k)] - typed[Number(k)]).filter((x) => Number.isFinite(x))
  // The i-th keystroke is the i-th op frame each way (one key at a time, each waited for).
  const sent = await pa.evaluate(() => (window as unknown as { __wsSend: number[] }).__wsSend)
  const recv = await pb.evaluate(() => (window as unknown as { __wsRecv: number[] }).__wsRecv)
  const keys = Object.keys(typed).map(Number).sort((a, b) => a - b)
  const parts = { sender: [] as number[], wire: [] as number[], receiver: [] as number[] }
  if (sent.length === keys.length && recv.length >= keys.length) {
    const r = recv.slice(-keys.length)
    keys.forEach((k, i) => {
      parts.sender.push(sent[i] - typed[k])
      parts.wire.push(r[i] - sent[i])
      parts.receiver.push(seen[k] - r[i])
    })
  }
  await Promise.all([ca.close(), cb.close()])
  return Object.assign(lat, { parts })
}

async function main(): Promise<void> {
  await ensureWebBuilt()
  const admin = postgres(args['pg-url']!, { max: 1, onnotice: () => {} })
  const dbName = `tasksync_webbench_${randomBytes(4).toString('hex')}`
  await admin.unsafe(`create database ${dbName}`)
  const dbUrl = new URL(args['pg-url']!)
  dbUrl.pathname = `/${dbName}`
  const dataDir = mkdtempSync(join(tmpdir(), 'tasksync-webbench-'))
  const closers: (() => Promise<unknown>)[] = []
  try {
    const config = loadConfig({
      NODE_ENV: 'production',
      DATABASE_URL: dbUrl.toString(),
      REDIS_URL: args['redis-url'],
      REDIS_PREFIX: `webbench-${randomBytes(4).toString('hex')}:`,
      JWT_SECRET: randomBytes(32).toString('hex'),
      DATA_DIR: dataDir,
      LOG_LEVEL: 'warn',
      AUTH_RATE_LIMIT_PER_MIN: '100000',
      SCRYPT_LOG_N: '12',
    })
    const database = await openDatabase({ databaseUrl: dbUrl.toString(), dataDir, poolSize: 2 })
    const [org] = await seedData(database, { orgs: 1, users: 5, projects: 10, tasks: TASKS, history: 3, comments: 0, hashPassword: (p) => hashPassword(p, 12) })
    await database.close()
    const app = await buildApp(config)
    closers.push(() => app.close())
    await app.listen({ host: '127.0.0.1', port: 0 })
    const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
    const owner = org.users[0]
    const t = { teardown: (fn: () => unknown) => closers.push(async () => fn()) }
    const browser = await launch(t)

    // Board: first visits in fresh profiles, then a revisit in each.
    const first: number[] = []
    const again: number[] = []
    const firstCards: number[] = []
    for (let i = 0; BOARD && i < RUNS; i++) {
      const context = await browser.newContext({ viewport: { width: 1280, height: 860 } })
      await context.addInitScript(boardProbe(TASKS))
      // Signed in through the API: the first load of the board is the first visit (empty IndexedDB, no service worker).
      const login = await (await fetch(`${url}/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: owner.email, password: owner.password, device: { name: `bench ${i}`, platform: 'web' } }) })).json()
      const session = { accessToken: login.accessToken, refreshToken: login.refreshToken, expiresAt: Date.now() + login.expiresIn * 1000, user: login.user, organization: login.organization, device: { id: login.device.id } }
      await context.addInitScript((s) => {
        if (!localStorage.getItem('tasksync.session')) localStorage.setItem('tasksync.session', s)
      }, JSON.stringify(session))
      const page = await context.newPage()
      if (process.env.WEB_BENCH_TRACE) page.on('console', (m) => m.text().startsWith('trace') && console.log(m.text()))
      if (process.env.WEB_BENCH_TRACE) page.on('request', (r) => r.url().includes('/api/') && console.log('req', Date.now() % 100000, r.url().slice(-60)))
      const cdp = process.env.WEB_BENCH_PROFILE ? await context.newCDPSession(page) : null
      if (cdp) {
        await cdp.send('Profiler.enable')
        await cdp.send('Profiler.setSamplingInterval', { interval: 200 })
        await cdp.send('Profiler.start')
      }
      const f = await measureBoard(page, `${url}/board`)
      if (cdp) {
        const { profile } = await cdp.send('Profiler.stop')
        const self = new Map<string, number>()
        const dt = new Map<number, number>()
        profile.samples!.forEach((id, k) => dt.set(id, (dt.get(id) ?? 0) + (profile.timeDeltas![k] ?? 0)))
        for (const n of profile.nodes) {
          const key = `${n.callFrame.functionName || '(anon)'} ${n.callFrame.url.split('/').pop()}:${n.callFrame.lineNumber}`
          self.set(key, (self.get(key) ?? 0) + (dt.get(n.id) ?? 0))
        }
        console.log([...self].sort((a, b) => b[1] - a[1]).slice(0, 25).map(([k, v]) => `${(v / 1000).toFixed(0).padStart(6)} ms ${k}`).join('\n'))
      }
      first.push(f.interactive)
      firstCards.push(f.cards)
      await page.evaluate(() => navigator.serviceWorker.ready)
      const a = await measureBoard(page, `${url}/board`)
      again.push(a.interactive)
      await context.close()
    }

    // Keystroke → the other browser.
    const lat: number[] & { parts?: Record<string, number[]> } = TYPING ? await keystrokes(browser, url, org) : []


    const build = JSON.parse(readFileSync(join(ROOT, 'dist', 'web', 'build.json'), 'utf8')) as { sizes: Record<string, { bytes: number; gzip: number }> }
    const js = Object.entries(build.sizes).filter(([f]) => f.endsWith('.js'))
    const jsGzip = js.reduce((n, [, s]) => n + s.gzip, 0)

    console.log(`web bench: ${TASKS} tasks, ${RUNS} runs, ${KEYS} keystrokes, Chromium ${browser.version()}`)
    if (BOARD) console.log(`  board interactive, first visit:  median ${ms(pct(first, 50))}, max ${ms(Math.max(...first))} (all cards shown: median ${ms(pct(firstCards, 50))})`)
    if (BOARD) console.log(`  board interactive, revisit:      median ${ms(pct(again, 50))}, max ${ms(Math.max(...again))}`)
    if (TYPING) console.log(`  keystroke → other browser:       p50 ${ms(pct(lat, 50))}, p95 ${ms(pct(lat, 95))}, max ${ms(Math.max(...lat))} (${lat.length} samples)`)
    if (TYPING && lat.parts?.sender.length) {
      const p = lat.parts
      const f = (xs: number[]) => `p50 ${ms(pct(xs, 50))} p95 ${ms(pct(xs, 95))}`
      console.log(`    input → socket send (sender): ${f(p.sender)}; send → other's socket (wire, server): ${f(p.wire)}; socket → title shows (receiver): ${f(p.receiver)}`)
    } else if (TYPING) console.log('    (no breakdown: op frames did not pair with keystrokes)')
    console.log(`  JavaScript: ${js.map(([f, s]) => `${f} ${(s.gzip / 1024).toFixed(1)} KB`).join(', ')} → ${(jsGzip / 1024).toFixed(1)} KB gzipped in total`)
  } finally {
    for (const c of closers.reverse()) await c().catch(() => {})
    await admin.unsafe(`drop database if exists ${dbName} with (force)`)
    await admin.end()
    rmSync(dataDir, { recursive: true, force: true })
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err)
    process.exit(1)
  },
)
