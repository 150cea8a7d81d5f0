/**
 * A minimal WebSocket client (RFC 6455) for the raw load generator
 * (load/worker.ts): steady's 1,000 sockets receive ~10 frames per committed op,
 * and the `ws` client's receive path (a Writable stream per socket, its state
 * machine, the 'message' event) and send path (cork, two writes, uncork) were
 * a third of the generator's CPU. This one parses frames straight from the
 * socket's data and sends each frame as one masked buffer in one write.
 *
 * Still a full client for what the server can send: the handshake is checked
 * (101, Upgrade: websocket, Sec-WebSocket-Accept), fragmented messages are
 * reassembled, pings answered, the close handshake done both ways, and a
 * protocol violation (RSV bits without an extension, a masked server frame, an
 * unknown opcode, a bad control frame, a message over maxPayload) closes the
 * socket with 1002/1009 as `ws` does. Every frame it sends is masked with a
 * random key. What it does not do: extensions (permessage-deflate is off in the
 * raw worker anyway), subprotocols, redirects, TLS, and UTF-8 validation (the
 * worker ran `ws` with skipUTF8Validation).
 */
import { createHash, randomBytes, randomFillSync } from 'node:crypto'
import { connect, type Socket } from 'node:net'

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'
/** Random masking keys, drawn 8 KiB at a time. */
const pool = Buffer.alloc(8192)
let poolAt = pool.length

function maskKey(into: Buffer, at: number): void {
  if (poolAt + 4 > pool.length) {
    randomFillSync(pool)
    poolAt = 0
  }
  into[at] = pool[poolAt]
  into[at + 1] = pool[poolAt + 1]
  into[at + 2] = pool[poolAt + 2]
  into[at + 3] = pool[poolAt + 3]
  poolAt += 4
}

/** One masked frame (FIN set) of `opcode` with `payload`, as a single buffer. */
export function encodeFrame(opcode: number, payload: string | Buffer): Buffer {
  const n = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length
  const hdr = n < 126 ? 6 : n < 65536 ? 8 : 14
  const buf = Buffer.allocUnsafe(hdr + n)
  buf[0] = 0x80 | opcode
  if (n < 126) buf[1] = 0x80 | n
  else if (n < 65536) {
    buf[1] = 0x80 | 126
    buf.writeUInt16BE(n, 2)
  } else {
    buf[1] = 0x80 | 127
    buf.writeUInt32BE(Math.floor(n / 2 ** 32), 2)
    buf.writeUInt32BE(n >>> 0, 6)
  }
  maskKey(buf, hdr - 4)
  if (typeof payload === 'string') buf.write(payload, hdr)
  else payload.copy(buf, hdr)
  const m0 = buf[hdr - 4]
  const m1 = buf[hdr - 3]
  const m2 = buf[hdr - 2]
  const m3 = buf[hdr - 1]
  let i = hdr
  const end = hdr + n
  for (; i + 3 < end; i += 4) {
    buf[i] ^= m0
    buf[i + 1] ^= m1
    buf[i + 2] ^= m2
    buf[i + 3] ^= m3
  }
  for (let k = 0; i < end; i++, k++) buf[i] ^= k === 0 ? m0 : k === 1 ? m1 : m2
  return buf
}

export interface RawWsOptions {
  headers?: Record<string, string>
  /** Largest message accepted (bytes); larger closes with 1009. Default 100 MiB, as `ws`. */
  maxPayload?: number
}

export class RawWs {
  /** A text (or binary) message, whole. */
  onMessage: (data: Buffer) => void = () => {}
  /** The connection is gone: the peer's close code, 1006 when none came. */
  onClose: (code: number) => void = () => {}
  private pending: Buffer | null = null
  private fragments: Buffer[] = []
  private fragmentBytes = 0
  private sentClose = false
  private closeCode = 1006
  private ended = false

  private constructor(
    private readonly socket: Socket,
    private readonly maxPayload: number,
  ) {}

  /** Connects and completes the opening handshake; rejects on any error or answer other than a valid 101. */
  static open(url: string, opts: RawWsOptions = {}): Promise<RawWs> {
    const u = new URL(url)
    if (u.protocol !== 'ws:') return Promise.reject(new Error(`only ws: URLs, not ${u.protocol}`))
    const key = randomBytes(16).toString('base64')
    const accept = createHash('sha1').update(key + GUID).digest('base64')
    const host = u.hostname.replace(/^\[|\]$/g, '')
    const port = Number(u.port || 80)
    return new Promise((resolve, reject) => {
      const socket = connect({ host, port })
      socket.setNoDelay(true)
      let head: Buffer = Buffer.alloc(0)
      const fail = (err: Error) => {
        socket.destroy()
        reject(err)
      }
      const onData = (chunk: Buffer) => {
        head = head.length ? Buffer.concat([head, chunk]) : chunk
        const end = head.indexOf('\r\n\r\n')
        if (end < 0) {
          if (head.length > 64 * 1024) fail(new Error('handshake answer too long'))
          return
        }
        const lines = head.subarray(0, end).toString('latin1').split('\r\n')
        const rest = head.subarray(end + 4)
        const status = lines[0]
        if (!/^HTTP\/1\.1 101 /.test(status)) return fail(new Error(`Unexpected server response: ${status.split(' ')[1] ?? status}`))
        const headers = new Map<string, string>()
        for (const line of lines.slice(1)) {
          const colon = line.indexOf(':')
          if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim())
        }
        if (headers.get('upgrade')?.toLowerCase() !== 'websocket') return fail(new Error('Invalid Upgrade header'))
        if (headers.get('sec-websocket-accept') !== accept) return fail(new Error('Invalid Sec-WebSocket-Accept header'))
        if (headers.has('sec-websocket-extensions')) return fail(new Error('Server sent a Sec-WebSocket-Extensions header but no extension was requested'))
        socket.off('data', onData)
        socket.off('error', fail)
        socket.off('close', onEarlyClose)
        const ws = new RawWs(socket, opts.maxPayload ?? 100 * 1024 * 1024)
        socket.on('data', (c: Buffer) => ws.receive(c))
        socket.on('error', () => {}) // 'close' follows and reports 1006
        socket.on('close', () => ws.gone())
        resolve(ws)
        if (rest.length) ws.receive(rest)
      }
      const onEarlyClose = () => reject(new Error('socket closed during the handshake'))
      socket.on('data', onData)
      socket.once('error', fail)
      socket.once('close', onEarlyClose)
      socket.once('connect', () => {
        const extra = Object.entries(opts.headers ?? {})
          .map(([k, v]) => `${k}: ${v}\r\n`)
          .join('')
        socket.write(
          `GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
            `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`,
        )
      })
    })
  }

  /** Sends a text message (one frame). */
  send(text: string): void {
    if (this.sentClose || this.ended) return
    this.socket.write(encodeFrame(0x1, text))
  }

  /** Starts the closing handshake; the socket ends when the server answers (or at once if it is gone). */
  close(code = 1000): void {
    if (this.sentClose || this.ended) return
    this.sentClose = true
    const payload = Buffer.alloc(2)
    payload.writeUInt16BE(code, 0)
    this.socket.write(encodeFrame(0x8, payload))
    // The server answers with its close frame and ends; do not wait for ever.
    setTimeout(() => this.socket.destroy(), 30_000).unref()
  }

  private fail(code: number): void {
    if (!this.sentClose) {
      this.sentClose = true
      const payload = Buffer.alloc(2)
      payload.writeUInt16BE(code, 0)
      this.socket.write(encodeFrame(0x8, payload))
    }
    this.closeCode = code
    this.socket.end()
    this.pending = null
  }

  private gone(): void {
    if (this.ended) return
    this.ended = true
    this.onClose(this.closeCode)
  }

  private receive(chunk: Buffer): void {
    if (this.ended) return
    let b = this.pending ? Buffer.concat([this.pending, chunk]) : chunk
    this.pending = null
    let off = 0
    while (b.length - off >= 2) {
      const b0 = b[off]
      const b1 = b[off + 1]
      if (b0 & 0x70) return this.fail(1002) // RSV bits: no extension was negotiated
      if (b1 & 0x80) return this.fail(1002) // the server must not mask
      const opcode = b0 & 0x0f
      const fin = (b0 & 0x80) !== 0
      let len = b1 & 0x7f
      let hdr = 2
      if (len === 126) {
        if (b.length - off < 4) break
        len = b.readUInt16BE(off + 2)
        hdr = 4
      } else if (len === 127) {
        if (b.length - off < 10) break
        const hi = b.readUInt32BE(off + 2)
        if (hi > 0x1fffff) return this.fail(1009)
        len = hi * 2 ** 32 + b.readUInt32BE(off + 6)
        hdr = 10
      }
      if (opcode >= 0x8 && (!fin || len > 125)) return this.fail(1002)
      if (len > this.maxPayload || this.fragmentBytes + len > this.maxPayload) return this.fail(1009)
      if (b.length - off < hdr + len) break
      const payload = b.subarray(off + hdr, off + hdr + len)
      off += hdr + len
      if (!this.frame(opcode, fin, payload)) return
    }
    if (off < b.length) this.pending = b.subarray(off)
  }

  /** False when the connection is failing and nothing more is to be read. */
  private frame(opcode: number, fin: boolean, payload: Buffer): boolean {
    switch (opcode) {
      case 0x1:
      case 0x2:
        if (this.fragments.length) return this.fail(1002), false
        if (fin) this.onMessage(payload)
        else {
          this.fragments.push(payload)
          this.fragmentBytes = payload.length
        }
        return true
      case 0x0:
        if (!this.fragments.length) return this.fail(1002), false
        this.fragments.push(payload)
        this.fragmentBytes += payload.length
        if (fin) {
          const whole = Buffer.concat(this.fragments)
          this.fragments = []
          this.fragmentBytes = 0
          this.onMessage(whole)
        }
        return true
      case 0x8: {
        this.closeCode = payload.length >= 2 ? payload.readUInt16BE(0) : 1005
        if (!this.sentClose) {
          this.sentClose = true
          this.socket.write(encodeFrame(0x8, payload.length >= 2 ? payload.subarray(0, 2) : Buffer.alloc(0)))
        }
        this.socket.end()
        return false
      }
      case 0x9:
        if (!this.sentClose) this.socket.write(encodeFrame(0xa, Buffer.from(payload)))
        return true
      case 0xa:
        return true
      default:
        return this.fail(1002), false
    }
  }
}
