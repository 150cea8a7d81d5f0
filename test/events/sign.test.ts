/**
 * The dispatcher's signature (node:crypto HMAC) is the Standard Webhooks one: it
 * equals what the `standardwebhooks` library signs and verifies with it, for ASCII
 * and multi-byte bodies; a different secret does not verify.
 */
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { Webhook } from 'standardwebhooks'
import { signWebhook } from '../../src/events/sender.js'

t.test('signWebhook signs as the Standard Webhooks library does', async (t) => {
  const secret = `whsec_${randomBytes(24).toString('base64')}`
  const lib = new Webhook(secret)
  const at = new Date('2026-12-07T08:00:00.123Z')
  for (const body of ['{"type":"task.updated","data":{"title":"plain"}}', JSON.stringify({ data: { title: 'Zürich — 東京 🚀' } })]) {
    const sig = signWebhook(secret, 'msg_1', at, body)
    t.equal(sig, lib.sign('msg_1', at, body), 'same signature as the library')
    const headers = { 'webhook-id': 'msg_1', 'webhook-timestamp': String(Math.floor(Date.now() / 1000)), 'webhook-signature': '' }
    headers['webhook-signature'] = signWebhook(secret, 'msg_1', new Date(Number(headers['webhook-timestamp']) * 1000), body)
    t.same(lib.verify(body, headers), JSON.parse(body), 'the library verifies it')
    const other = new Webhook(`whsec_${randomBytes(24).toString('base64')}`)
    t.throws(() => other.verify(body, headers), 'another secret does not verify')
  }
})
