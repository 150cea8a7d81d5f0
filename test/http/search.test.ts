/**
 * Full-text search of GET /api/tasks?q=: websearch syntax, ranking, snippets,
 * filters with cursor pagination, the org's language, and isolation — on
 * PostgreSQL and on the embedded PGlite, through the real app.
 */
import t, { type Test } from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildApp } from '../../src/app.js'
import { loadConfig } from '../../src/config/index.js'
import { addMember, api, registerOwner, startTestApp, type Api } from '../helpers/app.js'

async function pglite(t: Test): Promise<string> {
  const dataDir = mkdtempSync(join(tmpdir(), 'tasksync-search-'))
  const app = await buildApp(loadConfig({ DATA_DIR: dataDir, LOG_LEVEL: 'silent', SCRYPT_LOG_N: '10' }))
  t.teardown(async () => {
    await app.close()
    rmSync(dataDir, { recursive: true, force: true })
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  return `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
}

const ids = (res: { body: { items: { id: string }[] } }) => res.body.items.map((x) => x.id)

async function suite(t: Test, url: string) {
  const owner = await registerOwner(url)
  const me = api(url, owner.accessToken)
  const stranger = api(url, (await registerOwner(url)).accessToken)
  const make = async (init: Record<string, unknown>, as: Api = me) => {
    const res = await as.post('/api/tasks', init)
    t.equal(res.status, 201)
    return res.body.id as string
  }
  const login = await make({ title: 'Login fails on Safari', description: 'Users cannot log in when cookies are blocked', tags: ['auth'], status: 'todo' })
  const mentions = await make({ title: 'Write release notes', description: 'mention the login fix and the <script> escaping', status: 'done' })
  const tagged = await make({ title: 'Rotate keys', description: 'quarterly', tags: ['login'] })
  const phrase = await make({ title: 'Dark mode', description: 'log in screen colours' })
  const other = await make({ title: 'Login login login', description: 'another org' }, stranger)

  const q = (query: string, extra = '') => me.get(`/api/tasks?q=${encodeURIComponent(query)}${extra}`)

  // Ranking: title (A) beats tags (B) beats description (C).
  t.same(ids(await q('login')), [login, tagged, mentions], 'ranked: the title hit first, then the tag, then the description')
  const hits = (await q('login')).body.items
  t.ok(hits[0].match.rank > hits[1].match.rank && hits[1].match.rank > hits[2].match.rank, 'ranks decrease')
  t.match(hits[0].match.snippet, /<mark>Login<\/mark> fails on Safari/, 'the snippet highlights the match')
  t.notMatch((await q('escaping')).body.items[0].match.snippet, /<script>/, 'the snippet is HTML-escaped')
  t.match((await q('escaping')).body.items[0].match.snippet, /&lt;script&gt;/)

  // websearch_to_tsquery syntax: quotes, -, or.
  t.same(new Set(ids(await q('"log in"'))), new Set([login, phrase]), 'a quoted phrase matches the words in order')
  t.same(ids(await q('"in log"')), [], 'and not out of order')
  t.same(new Set(ids(await q('login -safari'))), new Set([tagged, mentions]), '-word excludes')
  t.same(new Set(ids(await q('safari or quarterly'))), new Set([login, tagged]), 'or')
  t.same(ids(await q('-')), [], 'a query of only operators matches nothing (no error)')
  t.equal((await q('nothing-matches-this')).status, 200)

  // Combined with filters.
  t.same(ids(await q('login', '&status=done')), [mentions])
  t.same(ids(await q('login', '&tag=auth')), [login])

  // Isolation: the stranger's task is never found, and theirs never sees ours.
  t.notOk(ids(await q('login')).includes(other), 'another org never matches')
  t.same(ids(await stranger.get('/api/tasks?q=login')), [other])

  // Deleted tasks are not found.
  await me.delete(`/api/tasks/${phrase}`)
  t.same(ids(await q('"log in"')), [login])

  // Pagination in rank order: every hit once.
  const many: string[] = []
  for (let i = 0; i < 7; i++) many.push(await make({ title: `Paging ${'paging '.repeat(i % 3)}item ${i}` }))
  const seen: string[] = []
  let cursor: string | null = null
  let pages = 0
  do {
    const page: { body: { items: { id: string; match: { rank: number } }[]; nextCursor: string | null } } = await q('paging', `&limit=3${cursor ? `&cursor=${cursor}` : ''}`)
    seen.push(...page.body.items.map((x) => x.id))
    cursor = page.body.nextCursor
    pages++
  } while (cursor)
  t.equal(pages, 3)
  t.same([...seen].sort(), [...many].sort(), 'every hit once across pages')
  t.same(seen, ids(await q('paging', '&limit=50')), 'in the same order as one page')
  t.equal((await q('paging', '&cursor=garbage')).status, 400)

  // Two tiers: hits on title or tags alone first, then those that need the description; pages cross the boundary.
  const head: string[] = []
  for (let i = 0; i < 3; i++) head.push(await make({ title: `Scrolling ${i}`, description: 'scrolling '.repeat(i) }))
  head.push(await make({ title: 'Tagged only', tags: ['scrolling'] }))
  const jank = await make({ title: 'Scrolling jank', description: 'when the list goes down' })
  head.push(jank)
  const body: string[] = []
  for (let i = 0; i < 4; i++) body.push(await make({ title: `Other ${i}`, description: `${'scrolling '.repeat(4 - i)}down` }))
  const whole = ids(await q('scrolling', '&limit=50'))
  t.same(new Set(whole.slice(0, head.length)), new Set(head), 'the title and tag hits come first')
  t.same(whole.slice(head.length), body, 'then the description hits, by rank (more occurrences first)')
  for (const limit of [1, 2, 3, 5]) {
    const walked: string[] = []
    let next: string | null = null
    do {
      const page: { body: { items: { id: string }[]; nextCursor: string | null } } = await q('scrolling', `&limit=${limit}${next ? `&cursor=${next}` : ''}`)
      walked.push(...ids(page))
      next = page.body.nextCursor
    } while (next)
    t.same(walked, whole, `pages of ${limit}: every hit once, in the order of one page`)
  }
  t.same(new Set(ids(await q('scrolling -down'))), new Set(head.filter((id) => id !== jank)), 'an excluded word is checked on the whole task in the head tier too')
  // A cursor made before tiers ({rank, id}) still reads, as one inside the head tier.
  const first = await q('scrolling', '&limit=2')
  const { tier: _tier, ...untiered } = JSON.parse(Buffer.from(first.body.nextCursor, 'base64url').toString())
  const legacy = Buffer.from(JSON.stringify(untiered)).toString('base64url')
  t.same(ids(await q('scrolling', `&limit=2&cursor=${legacy}`)), whole.slice(2, 4), 'an untiered cursor continues the head tier')

  // The org's language: a member may not change it; an owner may; stemming follows it.
  const org = await me.get('/api/organization')
  t.equal(org.status, 200)
  t.equal(org.body.searchLanguage, 'simple')
  t.ok(org.body.searchLanguages.includes('english'))
  t.same(ids(await q('users')), [login])
  t.same(ids(await q('user')), [], 'simple: no stemming')
  const member = await addMember(url, owner.accessToken, 'member')
  t.equal((await api(url, member.accessToken).patch('/api/organization', { searchLanguage: 'english' })).status, 403)
  t.equal((await me.patch('/api/organization', { searchLanguage: 'klingon' })).status, 400)
  t.equal((await me.patch('/api/organization', { searchLanguage: 'english' })).body.searchLanguage, 'english')
  t.same(ids(await q('user')), [login], 'english: "user" finds "Users"')
  const fresh = await make({ title: 'Blocked cookies', description: 'running tests' })
  t.same(ids(await q('run')), [fresh], 'a task created after the change is indexed in the new language')
  t.same(ids(await stranger.get('/api/tasks?q=user')), [], "the other org's language is unchanged")
}

t.test('search on PostgreSQL', async (t) => {
  const app = await startTestApp(t, { redis: false })
  await suite(t, app.url)
})

t.test('search on PGlite', async (t) => {
  await suite(t, await pglite(t))
})
