/**
 * Sending before the write (docs/protocol.md): an op typed while nothing of the
 * task is waiting goes out at once and is written meanwhile; if the process
 * dies between the send and the write, the next process on the same storage
 * neither loses nor doubles it, and never hands out its seq again. An op whose
 * content a write already took (a pending op composed while another was in
 * flight) is still written before it is sent.
 */
import t from 'tap'
import { memoryStorage, type ClientStorage, type StorageChanges } from '../../src/client/index.js'
import { slotStorage } from '../../src/client/slots.js'
import { nextSent, settle } from './fake-socket.js'
import { TASK, openTask, remoteOp, setup } from './setup.js'

/** A memory storage whose saves can be held; `lose()` ends the held ones without applying them (the tab died before they reached disk). */
function gatedStorage() {
  const inner = memoryStorage()
  let held: { changes: StorageChanges; done: () => void }[] | null = null
  let saved = 0
  const storage: ClientStorage = {
    locks: inner.locks,
    load: () => inner.load(),
    async save(changes) {
      if (held) await new Promise<void>((done) => held!.push({ changes, done }))
      else await inner.save(changes)
      saved++
    },
  }
  return {
    storage,
    get saved() {
      return saved
    },
    hold() {
      held = []
    },
    async release() {
      const h = held ?? []
      held = null
      for (const { changes, done } of h) {
        await inner.save(changes)
        done()
      }
    },
    /** Resolves once a save is waiting at the gate. */
    async held() {
      for (let i = 0; i < 300 && !held?.length; i++) await settle()
      return held?.length ?? 0
    },
    lose() {
      const h = held ?? []
      held = null
      for (const { done } of h) done()
      return h.length
    },
  }
}

/** Waits until the task's stored base reached `rev` (the writes are asynchronous). */
async function storedRev(storage: ClientStorage, clientId: string, rev: number): Promise<void> {
  const slot = slotStorage(storage, clientId)
  for (let i = 0; i < 300; i++) {
    if (((await slot.load())[`task:${TASK}`] as { base: { rev: number } } | undefined)?.base.rev === rev) return
    await settle()
  }
  throw new Error(`timed out waiting for stored rev ${rev}`)
}

t.test('the tab dies after the send, before the write: the committed op comes back once, its seq is never handed out again', async (t) => {
  const gate = gatedStorage()
  const first = await setup(t, { storage: gate.storage })
  const clientId = first.client.clientId
  const task = await openTask(first, 5, { title: 'hello' })

  // The first seq of a process reserves a block in storage: that op is written before it is sent.
  task.submit({ title: [5, '!'] })
  const a = await nextSent(first.sock, 'op')
  first.sock.receive({ type: 'ack', taskId: TASK, seq: a.seq, rev: 6 })
  await storedRev(gate.storage, clientId, 6)

  // Now storage holds nothing of the task's queue and the next seqs are reserved: a keystroke goes out before its write.
  gate.hold()
  const savedBefore = gate.saved
  task.submit({ title: [6, '?'] })
  const b = first.sock.take('op')
  t.equal(b.length, 1, 'sent in the same turn as the keystroke')
  t.equal(gate.saved, savedBefore, 'no write had completed when it was sent')
  t.same(b[0].op, { title: [6, '?'] })
  // The server commits it at rev 7; the tab dies before the write and before the ack.
  t.ok((await gate.held()) > 0, 'its write was under way')
  gate.lose()
  await first.client.close()
  const kept = (await slotStorage(gate.storage, clientId).load())[`task:${TASK}`] as { base: { rev: number; title: string }; inflight: unknown; pending: unknown }
  t.match(kept, { base: { rev: 6, title: 'hello!' }, inflight: null, pending: null }, 'storage is one step behind: the edit is only on the server')

  // The next process on the same storage: the replay brings the edit as an op of its own clientId under a seq it no longer knows.
  const second = await setup(t, { storage: gate.storage })
  t.equal(second.client.clientId, clientId, 'same writer slot')
  const restored = second.client.openTasks[0]
  const sub = await nextSent(second.sock, 'subscribe')
  t.same(sub.since, { [TASK]: 6 })
  // It edits before the replay arrives: under a seq past the reservation, not the one its earlier life used.
  restored.submit({ priority: { set: 3 } })
  second.sock.receive(remoteOp(7, { title: [6, '?'] }, clientId, b[0].seq))
  second.sock.receive({ type: 'subscribed', taskIds: [TASK], projectIds: [], all: false })
  const c = await nextSent(second.sock, 'op')
  t.ok(c.seq > b[0].seq + 900, `seq ${c.seq} skips the block reserved before the restart (the lost write used ${b[0].seq})`)
  t.same([c.baseRev, c.op], [7, { priority: { set: 3 } }])
  second.sock.receive({ type: 'ack', taskId: TASK, seq: c.seq, rev: 8 })
  t.same([restored.snapshot.title, restored.snapshot.priority, restored.rev, restored.pending], ['hello!?', 3, 8, 0], 'the edit is there once, and the later one after it')
})

t.test('an op whose content a write already took (composed while another was in flight) is written before it is sent', async (t) => {
  const gate = gatedStorage()
  const s = await setup(t, { storage: gate.storage })
  const task = await openTask(s, 5, { title: 'hello' })
  task.submit({ title: [5, '1'] })
  const a = await nextSent(s.sock, 'op')
  s.sock.receive({ type: 'ack', taskId: TASK, seq: a.seq, rev: 6 })
  await storedRev(gate.storage, s.client.clientId, 6)

  task.submit({ title: [6, '2'] })
  const b = s.sock.take('op')
  t.equal(b.length, 1, 'typed while idle: sent at once')
  // Typed while b is in flight: pending, and written as such (without a seq).
  task.submit({ title: [7, '3'] })
  await settle()
  const slot = slotStorage(gate.storage, s.client.clientId)
  t.match((await slot.load())[`task:${TASK}`], { pending: { title: [7, '3'] } }, 'the pending op is in storage')
  // Its promotion must reach storage (with its seq) before the server can see it: otherwise a restart
  // would send the stored pending op again under another seq and the server would apply it twice.
  gate.hold()
  s.sock.receive({ type: 'ack', taskId: TASK, seq: b[0].seq, rev: 7 })
  await settle()
  t.same(s.sock.take('op'), [], 'not sent while its write is held')
  await gate.release()
  const c = await nextSent(s.sock, 'op')
  t.same([c.baseRev, c.op], [7, { title: [7, '3'] }])
  t.match((await slot.load())[`task:${TASK}`], { inflight: { seq: c.seq }, pending: null }, 'written with its seq before it was sent')
})

t.test('an edit made in the ack listener is sent once (the ack does not clear the new op\'s sent mark)', async (t) => {
  const s = await setup(t)
  const task = await openTask(s, 5, { title: 'hello' })
  task.submit({ title: [5, '1'] })
  const a = await nextSent(s.sock, 'op')
  s.sock.receive({ type: 'ack', taskId: TASK, seq: a.seq, rev: 6 })
  await settle()
  // Writers that keep one op in flight edit again on each ack, synchronously.
  let edited = false
  task.on('ack', () => {
    if (edited) return
    edited = true
    task.submit({ title: [7, '3'] })
  })
  task.submit({ title: [6, '2'] })
  const b = await nextSent(s.sock, 'op')
  s.sock.receive({ type: 'ack', taskId: TASK, seq: b.seq, rev: 7 })
  for (let i = 0; i < 20; i++) await settle()
  const sent = s.sock.take('op')
  t.equal(sent.length, 1, 'the edit went out once on this socket (twice, the server refuses the second: seq already in flight)')
  t.same([sent[0]?.baseRev, sent[0]?.op], [7, { title: [7, '3'] }])
})
