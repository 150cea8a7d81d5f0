/** The pure notification rules: mentions and who is told what (fast-check properties). */
import t from 'tap'
import fc from 'fast-check'
import { mayNotify, mentionedIn, notificationsFor, type Person } from '../../src/events/rules.js'
import { EVENT_TYPES, webhookPayload, type StoredEvent } from '../../src/events/types.js'

const name = fc.stringMatching(/^[A-Z][a-z]{1,8}( [A-Z][a-z]{1,8})?$/)
const person = fc.record({ id: fc.uuid(), email: fc.stringMatching(/^[a-z]{1,8}@[a-z]{1,6}\.test$/), displayName: name })

t.test('a mention by display name or email finds the person, case-insensitively, wherever it stands', async (t) => {
  fc.assert(
    fc.property(person, fc.boolean(), fc.string({ maxLength: 20 }), fc.constantFrom('', ' ', '.', ', thanks', '!'), (p, byEmail, before, after) => {
      const handle = byEmail ? p.email : p.displayName
      const body = `${before} @${handle.toUpperCase()}${after}`
      return mentionedIn(body, [p]).length === 1
    }),
  )
})

t.test('a longer name does not mention a shorter one; no @ mentions nobody', async (t) => {
  fc.assert(
    fc.property(person, fc.stringMatching(/^[a-z0-9]{1,5}$/), (p, more) => {
      const other: Person = { ...p, id: 'x', email: 'nobody@x.test' }
      return mentionedIn(`@${p.displayName}${more}`, [other]).length === 0 && mentionedIn(`${p.displayName} ${p.email}`, [p]).length === 0
    }),
  )
})

t.test('never a notification for the actor, at most one per person per event', async (t) => {
  fc.assert(
    fc.property(fc.uniqueArray(person, { minLength: 1, maxLength: 5, selector: (p) => p.id }), fc.nat(), fc.nat(), fc.nat(), (people, ai, bi, ci) => {
      const actor = people[ai % people.length]
      const assignee = people[bi % people.length]
      const creator = people[ci % people.length]
      const body = people.map((p) => `@${p.displayName}`).join(' ')
      const base = { seq: 1, id: 'e', orgId: 'o', taskId: 't', rev: 2, actorId: actor.id, at: '2026-01-01T00:00:00.000Z' }
      const events: StoredEvent[] = [
        { ...base, type: 'comment.created', change: { comment: { body } } },
        { ...base, type: 'task.updated', change: { fields: { assigneeId: { from: null, to: assignee.id } } } },
      ]
      return events.every((e) => {
        const out = notificationsFor(e, { people, task: { title: 'T', assigneeId: assignee.id, createdBy: creator.id } })
        return out.every((n) => n.userId !== actor.id) && new Set(out.map((n) => n.userId)).size === out.length
      })
    }),
  )
})

t.test('overdue goes to the assignee, or the creator when nobody is assigned', async (t) => {
  const a = { id: 'a', email: 'a@x.test', displayName: 'A' }
  const c = { id: 'c', email: 'c@x.test', displayName: 'C' }
  const e: StoredEvent = { seq: 1, id: 'e', orgId: 'o', type: 'task.overdue', taskId: 't', rev: 3, actorId: null, at: '', change: {} }
  t.same(notificationsFor(e, { people: [a, c], task: { title: 'T', assigneeId: 'a', createdBy: 'c' } }).map((n) => [n.userId, n.kind]), [['a', 'overdue']])
  t.same(notificationsFor(e, { people: [a, c], task: { title: 'T', assigneeId: null, createdBy: 'c' } }).map((n) => [n.userId, n.kind]), [['c', 'overdue']])
})

t.test('an event mayNotify rules out makes no notification, whoever the people and whatever the task', async (t) => {
  const change = <T>(v: fc.Arbitrary<T>) => fc.record({ from: v, to: v })
  const fields = fc.record(
    {
      title: change(fc.string({ maxLength: 12 })),
      assigneeId: change(fc.option(fc.uuid(), { nil: null })),
      status: change(fc.constantFrom('todo', 'doing', 'done')),
      dueAt: change(fc.option(fc.constant('2026-01-02T00:00:00.000Z'), { nil: null })),
    },
    { requiredKeys: [] },
  )
  const event = fc.record({
    type: fc.constantFrom(...EVENT_TYPES),
    change: fc.oneof(fc.record({ fields }), fc.record({ comment: fc.record({ body: fc.string({ maxLength: 30 }) }) }), fc.constant({})),
  })
  fc.assert(
    fc.property(fc.uniqueArray(person, { minLength: 1, maxLength: 4, selector: (p) => p.id }), event, fc.nat(), fc.nat(), (people, ev, ai, bi) => {
      // Every field value that names somebody names one of the people.
      const pick = (i: number) => people[i % people.length].id
      const change = JSON.parse(JSON.stringify(ev.change).replace(/"to":"[0-9a-f-]{36}"/g, `"to":"${pick(bi)}"`))
      const e: StoredEvent = { seq: 1, id: 'e', orgId: 'o', taskId: 't', rev: 2, actorId: pick(ai + 1), at: '2026-01-01T00:00:00.000Z', type: ev.type, change }
      const made = notificationsFor(e, { people, task: { title: 'T', assigneeId: pick(bi), createdBy: pick(ai) } })
      return mayNotify(e) || made.length === 0
    }),
  )
  const assign: StoredEvent = { seq: 1, id: 'e', orgId: 'o', taskId: 't', rev: 2, actorId: null, at: '', type: 'task.updated', change: { fields: { assigneeId: { from: null, to: 'a' } } } }
  t.equal(mayNotify(assign), true, 'an assignment may notify')
  t.equal(mayNotify({ ...assign, change: { fields: { title: { from: 'x', to: 'y' } } } }), false, 'a title change does not')
})

t.test('the payload spliced from the change as read (text) is the document JSON.stringify makes; mayNotify reads the text alike', async (t) => {
  const change = fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 3 }))
  fc.assert(
    fc.property(
      fc.constantFrom(...EVENT_TYPES), fc.uuid(), fc.option(fc.uuid()), fc.option(fc.nat()), fc.option(fc.uuid()),
      fc.oneof(change, fc.constant({ fields: { assigneeId: { from: null, to: '5b1c0f1e-0000-4000-8000-000000000001' } } })),
      (type, id, taskId, rev, actorId, ch) => {
        const parsed: StoredEvent = { seq: 1, id, orgId: id, type, taskId, rev, actorId, at: '2026-12-07T15:00:00.000Z', change: ch }
        // PostgreSQL prints jsonb with spaces after ':' and ','; any valid JSON text of the change will do.
        const text = JSON.stringify(ch, null, 1)
        const fromText: StoredEvent = { ...parsed, changeJson: text }
        return JSON.stringify(JSON.parse(webhookPayload(fromText))) === webhookPayload(parsed) && mayNotify(fromText) === mayNotify(parsed)
      },
    ),
  )
})
