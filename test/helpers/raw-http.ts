/**
 * Raw HTTP over a TCP socket, for requests no HTTP client will send: malformed
 * heads, bodies shorter than their Content-Length, bytes that are not UTF-8.
 */
import { connect, type Socket } from 'node:net'

export interface RawResponse {
  /** 0 when the server closed without answering. */
  status: number
  headers: Record<string, string>
  body: string
  /** The body parsed as JSON, or null. */
  json: any
  /** True once the server closed the connection. */
  closed: boolean
}

/** Parses the first HTTP response in `text` (Content-Length bodies only, as the server sends). */
export function parseResponse(text: string): Omit<RawResponse, 'closed'> | null {
  const end = text.indexOf('\r\n\r\n')
  if (end < 0) return null
  const [statusLine, ...lines] = text.slice(0, end).split('\r\n')
  const headers: Record<string, string> = {}
  for (const line of lines) {
    const i = line.indexOf(':')
    headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim()
  }
  const length = Number(headers['content-length'] ?? 0)
  const body = text.slice(end + 4, end + 4 + length)
  if (Buffer.byteLength(body) < length) return null
  let json: unknown = null
  try {
    json = JSON.parse(body)
  } catch {}
  return { status: Number(statusLine.split(' ')[1]) || 0, headers, body, json }
}

/**
 * Sends `raw` (and nothing more) and resolves once the server has answered and
 * closed, or has closed without an answer. `timeoutMs` bounds the wait: past it
 * the socket is destroyed and the answer so far returned (closed: false).
 */
export function rawRequest(port: number, raw: string | Buffer | Array<string | Buffer>, timeoutMs = 30_000): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket: Socket = connect(port, '127.0.0.1')
    const chunks: Buffer[] = []
    const finish = (closed: boolean) => {
      clearTimeout(timer)
      socket.destroy()
      const text = Buffer.concat(chunks).toString('utf8')
      const parsed = parseResponse(text)
      resolve({ ...(parsed ?? { status: 0, headers: {}, body: text, json: null }), closed })
    }
    const timer = setTimeout(() => finish(false), timeoutMs)
    socket.on('data', (d) => chunks.push(d))
    socket.on('close', () => finish(true))
    socket.on('error', (err) => (chunks.length ? undefined : (err as NodeJS.ErrnoException).code === 'ECONNRESET' ? undefined : reject(err)))
    socket.on('connect', () => {
      for (const part of Array.isArray(raw) ? raw : [raw]) socket.write(part)
    })
  })
}
