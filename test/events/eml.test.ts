/** With no SMTP_URL (the embedded default), notification mails are .eml files under DATA_DIR/mail. */
import t from 'tap'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { randomUUID } from 'node:crypto'
import { startTestApp, registerOwner, addMember, api } from '../helpers/app.js'
import { until } from '../ws/helpers.js'
import { simpleParser } from 'mailparser'

t.test('an assignment mail lands as an .eml file', async (t) => {
  const a = await startTestApp(t, { redis: false, env: { EVENT_POLL_MS: '20', DUE_SCAN_INTERVAL_S: '0' } })
  t.equal(a.app.events.mailer.target, join(a.app.config.DATA_DIR, 'mail'), 'the mail folder (the start-up log names it)')
  const owner = await registerOwner(a.url)
  const member = await addMember(a.url, owner.accessToken, 'member')
  await api(a.url, owner.accessToken).post('/api/tasks', { id: randomUUID(), title: 'File me', assigneeId: member.user.id })
  const dir = a.app.events.mailer.target
  await until(() => existsSync(dir) && readdirSync(dir).some((f) => f.endsWith('.eml')), 'an .eml file')
  const mail = await simpleParser(readFileSync(join(dir, readdirSync(dir).find((f) => f.endsWith('.eml'))!)))
  t.equal(mail.to && !Array.isArray(mail.to) ? mail.to.text : '', member.user.email)
  t.match(mail.subject, /assigned you “File me”/)
})
