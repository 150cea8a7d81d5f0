/**
 * Mail through nodemailer: SMTP when SMTP_URL is set, otherwise each message is
 * written as an .eml file under DATA_DIR/mail (the embedded default), so nothing
 * is sent anywhere by surprise and a developer can open what would have gone out.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { randomUUID } from 'node:crypto'
import nodemailer from 'nodemailer'

export interface Mail {
  to: string
  subject: string
  text: string
}

export interface Mailer {
  /** Where mails go, for the log: `smtp://host:port` or the .eml folder. */
  readonly target: string
  send(mail: Mail): Promise<void>
  close(): void
}

export function createMailer(opts: { smtpUrl?: string; from: string; dataDir: string }): Mailer {
  if (opts.smtpUrl) {
    const transport = nodemailer.createTransport(opts.smtpUrl)
    const u = new URL(opts.smtpUrl)
    return {
      target: `${u.protocol}//${u.host}`,
      send: async (m) => {
        await transport.sendMail({ from: opts.from, to: m.to, subject: m.subject, text: m.text })
      },
      close: () => transport.close(),
    }
  }
  const dir = join(opts.dataDir, 'mail')
  const transport = nodemailer.createTransport({ streamTransport: true, buffer: true, newline: 'unix' })
  return {
    target: dir,
    send: async (m) => {
      const info = await transport.sendMail({ from: opts.from, to: m.to, subject: m.subject, text: m.text })
      mkdirSync(dir, { recursive: true })
      writeFileSync(join(dir, `${new Date().toISOString().replace(/[:.]/g, '-')}-${randomUUID().slice(0, 8)}.eml`), info.message as Buffer)
    },
    close: () => transport.close(),
  }
}
