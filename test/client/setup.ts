/**
 * Builds a client wired to fake sockets, and opens a task the way the server
 * would answer a subscribe, so each test starts from a known rev and content.
 */
import { TaskSyncClient, memoryStorage, type ClientStorage, type TaskHandle } from '../../src/client/index.js'
import { taskType } from '../../src/domain/index.js'
import type { TaskContent, TaskSnapshot } from '../../src/domain/types.js'
import { fakeWebSocket, waitFor, type FakeSocket } from './fake-socket.js'
import type { Teardown } from '../helpers/teardown.js'

export const TASK = '11111111-1111-4111-8111-111111111111'
export const OTHER_CLIENT = '22222222-2222-4222-8222-222222222222'
export const OTHER_USER = '33333333-3333-4333-8333-333333333333'

type FetchAnswer = { status: number; body?: unknown } | undefined
/** Answers a REST call (a promise holds it until the test lets it go). */
export type FetchScript = (method: string, path: string, body: unknown) => FetchAnswer | Promise<FetchAnswer>

export interface Setup {
  client: TaskSyncClient
  sockets: FakeSocket[]
  storage: ClientStorage
  /** The socket of the current connection, opened and welcomed. */
  sock: FakeSocket
  /** REST calls the client made. */
  calls: string[]
  /** Waits for the client's next socket, opens it, answers hello. */
  nextSocket(): Promise<FakeSocket>
}

export function snapshot(rev: number, content: Partial<TaskContent> = {}): TaskSnapshot {
  return {
    ...taskType.create(),
    ...content,
    id: TASK,
    rev,
    clock: {},
    createdAt: '2026-01-01T00:00:00.000Z',
    updatedAt: '2026-01-01T00:00:00.000Z',
    updatedBy: OTHER_USER,
  }
}

export async function setup(
  t: Teardown,
  opts: { storage?: ClientStorage; fetch?: FetchScript; heartbeatMs?: number; connect?: boolean; credentials?: boolean; longAbsenceMs?: number } = {},
): Promise<Setup> {
  const { WebSocket, sockets } = fakeWebSocket()
  const storage = opts.storage ?? memoryStorage()
  const calls: string[] = []
  const fetch = async (url: string, init?: RequestInit) => {
    const path = url.replace('http://fake.test', '')
    calls.push(`${init?.method ?? 'GET'} ${path}`)
    const answer = await opts.fetch?.(init?.method ?? 'GET', path, init?.body ? JSON.parse(String(init.body)) : undefined)
    if (!answer) return new Response(JSON.stringify({ error: { code: 'not_found', message: 'no route in this test' } }), { status: 404 })
    return new Response(answer.body === undefined ? null : JSON.stringify(answer.body), { status: answer.status })
  }
  const client = new TaskSyncClient({
    url: 'http://fake.test',
    ...(opts.credentials
      ? { credentials: { email: 'a@example.test', password: 'pw', device: { name: 'phone', platform: 'test' } } }
      : { getAccessToken: async () => 'header.e30.signature' }),
    WebSocket,
    fetch,
    storage,
    backoff: { baseMs: 1, maxMs: 5 },
    heartbeatMs: opts.heartbeatMs ?? 60_000,
    retry: { baseMs: 2 },
    longAbsenceMs: opts.longAbsenceMs,
  })
  t.teardown(() => client.close())
  await client.connect()
  let seen = 0
  const s: Setup = {
    client,
    sockets,
    storage,
    calls,
    sock: undefined as unknown as FakeSocket,
    async nextSocket() {
      const sock = await waitFor(() => sockets[seen], 'a new socket')
      seen++
      sock.open()
      const hello = sock.take('hello')
      if (hello.length !== 1 || hello[0].clientId !== client.clientId) throw new Error('expected one hello with the clientId')
      sock.receive({ type: 'welcome', sessionId: 's', instanceId: 'i', serverTime: new Date().toISOString(), heartbeatMs: 25_000 })
      s.sock = sock
      return sock
    },
  }
  if (opts.connect !== false) await s.nextSocket()
  return s
}

/** Opens TASK and answers its subscribe with a snapshot at `rev`. */
export async function openTask(s: Setup, rev = 5, content: Partial<TaskContent> = { title: 'hello' }): Promise<TaskHandle> {
  const p = s.client.task(TASK)
  const sub = await waitFor(() => s.sock.take('subscribe')[0], 'subscribe')
  if (sub.since) throw new Error('a fresh open must not send since')
  s.sock.receive({ type: 'snapshot', taskId: TASK, rev, task: snapshot(rev, content) })
  s.sock.receive({ type: 'subscribed', taskIds: [TASK], projectIds: [], all: false })
  return p
}

/** An `op` message from another client. */
export function remoteOp(rev: number, op: object, clientId = OTHER_CLIENT, seq = rev * 10) {
  return { type: 'op', taskId: TASK, rev, op, userId: OTHER_USER, deviceId: 'dev-other', clientId, seq, at: new Date().toISOString() }
}
