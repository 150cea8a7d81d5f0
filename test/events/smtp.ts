/** A real SMTP server (the `smtp-server` package) on loopback that keeps every mail it receives, parsed (`mailparser`). */
import { SMTPServer } from 'smtp-server'
import { simpleParser } from 'mailparser'
import type { AddressInfo } from 'node:net'
import type { Teardown } from '../helpers/teardown.js'

export interface ReceivedMail {
  to: string
  subject: string
  text: string
}

export interface MailBox {
  url: string
  mails: ReceivedMail[]
  waitFor(check: (mails: ReceivedMail[]) => boolean, what: string, timeoutMs?: number): Promise<void>
}

export async function startSmtp(t: Teardown): Promise<MailBox> {
  const waiters = new Set<() => void>()
  const box: MailBox = {
    url: '',
    mails: [],
    waitFor: (check, what, timeoutMs = 30_000) =>
      new Promise((resolve, reject) => {
        const test = () => {
          if (!check(box.mails)) return
          waiters.delete(test)
          clearTimeout(timer)
          resolve()
        }
        const timer = setTimeout(() => {
          waiters.delete(test)
          reject(new Error(`smtp: timed out waiting for ${what}; got ${JSON.stringify(box.mails.map((m) => [m.to, m.subject]))}`))
        }, timeoutMs)
        waiters.add(test)
        test()
      }),
  }
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onData(stream, session, callback) {
      simpleParser(stream)
        .then((mail) => {
          const to = session.envelope.rcptTo.map((r) => r.address).join(',')
          box.mails.push({ to, subject: mail.subject ?? '', text: mail.text ?? '' })
          for (const w of [...waiters]) w()
          callback()
        })
        .catch(callback)
    },
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  box.url = `smtp://127.0.0.1:${(server.server.address() as AddressInfo).port}`
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return box
}
