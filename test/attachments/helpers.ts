/** Raw REST uploads for the attachment tests: open, chunks, complete, download. */
import { createHash, randomBytes, randomUUID } from 'node:crypto'
import { api } from '../helpers/app.js'

export const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex')

export async function newTask(url: string, token: string): Promise<string> {
  const id = randomUUID()
  const res = await api(url, token).post('/api/tasks', { id, title: 'with files' })
  if (res.status !== 201) throw new Error(`task create: ${res.status} ${JSON.stringify(res.body)}`)
  return id
}

export interface Upload {
  id: string
  taskId: string
  bytes: Buffer
  chunkSize: number
  chunks: Buffer[]
}

export async function openUpload(url: string, token: string, taskId: string, bytes: Buffer, extra: Partial<{ id: string; name: string; contentType: string; sha256: string }> = {}) {
  const id = extra.id ?? randomUUID()
  const res = await api(url, token).post(`/api/tasks/${taskId}/attachments`, {
    id,
    name: extra.name ?? 'file.bin',
    contentType: extra.contentType ?? 'application/octet-stream',
    size: bytes.length,
    sha256: extra.sha256 ?? sha256(bytes),
  })
  return { id, res }
}

export function split(bytes: Buffer, chunkSize: number): Buffer[] {
  const out: Buffer[] = []
  for (let i = 0; i < bytes.length; i += chunkSize) out.push(bytes.subarray(i, i + chunkSize))
  return out
}

export async function putChunk(url: string, token: string, taskId: string, id: string, n: number, body: Buffer) {
  const res = await fetch(`${url}/api/tasks/${taskId}/attachments/${id}/chunks/${n}`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' },
    body: Uint8Array.from(body),
  })
  const text = await res.text()
  return { status: res.status, body: text ? JSON.parse(text) : null }
}

export const complete = (url: string, token: string, taskId: string, id: string) =>
  api(url, token).post(`/api/tasks/${taskId}/attachments/${id}/complete`)

export async function download(url: string, token: string, taskId: string, id: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${url}/api/tasks/${taskId}/attachments/${id}`, { headers: { authorization: `Bearer ${token}`, ...headers }, redirect: 'manual' })
  return { status: res.status, headers: res.headers, bytes: Buffer.from(await res.arrayBuffer()) }
}

/** Opens, sends every chunk (in parallel) and completes; returns the attachment. */
export async function uploadWhole(url: string, token: string, taskId: string, bytes: Buffer, extra: Parameters<typeof openUpload>[4] = {}) {
  const { id, res } = await openUpload(url, token, taskId, bytes, extra)
  if (res.status !== 201) throw new Error(`open: ${res.status} ${JSON.stringify(res.body)}`)
  const chunks = split(bytes, res.body.chunkSize)
  await Promise.all(chunks.map(async (c, n) => {
    const r = await putChunk(url, token, taskId, id, n, c)
    if (r.status !== 200) throw new Error(`chunk ${n}: ${r.status} ${JSON.stringify(r.body)}`)
  }))
  const done = await complete(url, token, taskId, id)
  if (done.status !== 201) throw new Error(`complete: ${done.status} ${JSON.stringify(done.body)}`)
  return done.body
}

export const randomFile = (n: number) => randomBytes(n)
