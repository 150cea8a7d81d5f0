/**
 * The recorded history of a chaos run: every mutation a client invoked and how
 * it ended, everything each client observed (ops, snapshots, acks, reads, with
 * their revs), the states its replicas went through, and the faults injected.
 * Kept in memory for the checker and written as JSON lines to a file.
 */
import { createWriteStream, type WriteStream } from 'node:fs'

/** Milliseconds since the run started. */
export type Millis = number

export type Via = 'ws' | 'push'

export type HistoryEvent =
  /** A mutation sent (again, when `resend`). `writer` is one client instance; `client` the logical client it plays. */
  | { type: 'invoke'; t: Millis; client: string; writer: string; clientId: string; seq: number; taskId: string; kind: 'create' | 'op'; op: unknown; baseRev?: number; via: Via; resend?: boolean }
  /** Its acknowledgement: committed at `rev`, or `noop` (committed nothing; `rev` is the current rev). */
  | { type: 'ack'; t: Millis; client: string; writer: string; clientId: string; seq: number; taskId: string; rev: number; noop: boolean; via: Via }
  /** A refusal: `definite` when the server says nothing was committed, else the outcome is unknown (unavailable, timeout, network). */
  | { type: 'fail'; t: Millis; client: string; writer: string; clientId: string; seq: number; taskId: string; code: string; definite: boolean; via: Via }
  /**
   * Something a client saw of a task: an `op` (its state is now `rev`), a `snapshot`, its own `ack`, a
   * `deleted` notice, a `read` (REST snapshot or pull), a `view` (what a REST client holds after a pull).
   * `conn` names the socket (or `rest`); `t0` is when the read began (for pushed messages, when it arrived).
   */
  | { type: 'observe'; t: Millis; t0: Millis; client: string; conn: string; taskId: string; what: 'op' | 'snapshot' | 'ack' | 'deleted' | 'read' | 'view'; rev: number; clientId?: string | null; seq?: number | null; noop?: boolean }
  /** A socket (re)subscribed a task: from `since` (a replay follows) or from a snapshot (`since` null); `end` when it stopped following it. */
  | { type: 'subscribe'; t: Millis; client: string; conn: string; taskId: string; since: number | null; end?: boolean }
  /** A replica of `client` is the confirmed state of the task at `rev` (no local change on top), with its content hash. */
  | { type: 'state'; t: Millis; client: string; taskId: string; rev: number; hash: string; final?: boolean }
  /** A fault injected (`start`) and healed (`end`). */
  | { type: 'nemesis'; t: Millis; kind: string; target: string; phase: 'start' | 'end'; detail?: string }
  /** Anything else worth reading next to the rest (client errors, conflicts, reconnects). */
  | { type: 'note'; t: Millis; client: string; text: string }

type Without<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never

export class History {
  readonly events: HistoryEvent[] = []
  readonly started = Date.now()
  private readonly out: WriteStream | null

  constructor(path: string | null) {
    this.out = path ? createWriteStream(path) : null
  }

  now(): Millis {
    return Date.now() - this.started
  }

  add(e: Without<HistoryEvent, 't'> & { t?: Millis }): HistoryEvent {
    const event = { t: this.now(), ...e } as HistoryEvent
    this.events.push(event)
    this.out?.write(JSON.stringify(event) + '\n')
    return event
  }

  note(client: string, text: string): void {
    this.add({ type: 'note', client, text })
  }

  async close(): Promise<void> {
    if (!this.out) return
    await new Promise<void>((resolve) => this.out!.end(resolve))
  }
}
