/**
 * Mail through nodemailer: SMTP when SMTP_URL is set, otherwise each message is
 * written as an .eml file under DATA_DIR/mail (the embedded default), so nothing
 * is sent anywhere by surprise and a developer can open what would have gone out.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { randomUUID } from 'node:crypto'
import type { SendMailOptions, SentMessageInfo, Transporter } from 'nodemailer'

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
  // nodemailer (~10 MB resident) is loaded with the first mail, not at start.
  let transport: Promise<Transporter> | undefined
  const send = async (mail: SendMailOptions): Promise<SentMessageInfo> => {
    transport ??= import('nodemailer').then(({ default: nodemailer }) =>
      opts.smtpUrl ? nodemailer.createTransport(opts.smtpUrl) : nodemailer.createTransport({ streamTransport: true, buffer: true, newline: 'unix' }),
    )
    return (await transport).sendMail(mail)
  }
  const close = () => void transport?.then((t) => t.close())
  if (opts.smtpUrl) {
    const u = new URL(opts.smtpUrl)
    return {
      target: `${u.protocol}//${u.host}`,
      send: async (m) => {
        await send({ from: opts.from, to: m.to, subject: m.subject, text: m.text })
      },
      close,
    }
  }
  const dir = join(opts.dataDir, 'mail')
  return {
    target: dir,
    send: async (m) => {
      const info = await send({ from: opts.from, to: m.to, subject: m.subject, text: m.text })
      mkdirSync(dir, { recursive: true })
      writeFileSync(join(dir, `${new Date().toISOString().replace(/[:.]/g, '-')}-${randomUUID().slice(0, 8)}.eml`), info.message as Buffer)
    },
    close,
  }
}
