/**
 * Two instances of one deployment race for the last bytes of the quota: a
 * reservation is one conditional UPDATE of the organization's row, so exactly as
 * many uploads pass as fit, whatever instance they reached.
 */
import t from 'tap'
import { api, registerOwner, startTestApp } from '../helpers/app.js'
import { newTask, openUpload, randomFile } from './helpers.js'

t.test('uploads racing on two instances for the last bytes: only those that fit pass', async (t) => {
  const env = { ORG_STORAGE_QUOTA_BYTES: '100000' }
  const one = await startTestApp(t, { env })
  const two = await startTestApp(t, { env, databaseUrl: one.databaseUrl, redisPrefix: one.redisPrefix })
  const owner = await registerOwner(one.url)
  const taskId = await newTask(one.url, owner.accessToken)
  t.equal((await openUpload(one.url, owner.accessToken, taskId, randomFile(95_000))).res.status, 201)
  // 5000 bytes left; 20 uploads of 1000 bytes each, half on each instance, all at once.
  const racers = Array.from({ length: 20 }, (_, i) => openUpload(i % 2 ? two.url : one.url, owner.accessToken, taskId, randomFile(1000)))
  const answers = await Promise.all(racers)
  const statuses = answers.map((a) => a.res.status)
  t.equal(statuses.filter((s) => s === 201).length, 5, 'exactly the five that fit')
  t.equal(statuses.filter((s) => s === 413).length, 15)
  for (const a of answers.filter((x) => x.res.status === 413)) t.equal(a.res.body.error.code, 'too_large')
  const use = (await api(two.url, owner.accessToken).get('/api/storage')).body
  t.same(use, { quotaBytes: 100_000, usedBytes: 100_000, remainingBytes: 0 })
  // Cancelling one frees its bytes for the next.
  const winner = answers.find((a) => a.res.status === 201)!
  t.equal((await api(two.url, owner.accessToken).delete(`/api/tasks/${taskId}/attachments/${winner.id}`)).status, 204)
  t.equal((await openUpload(one.url, owner.accessToken, taskId, randomFile(1000))).res.status, 201)
  t.equal((await openUpload(two.url, owner.accessToken, taskId, randomFile(1))).res.body.error.details.remainingBytes, 0)
})
