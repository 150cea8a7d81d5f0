/**
 * A task's attachments: drop files on the box (or pick them) to upload, with a
 * progress bar each; the list is live (other people's uploads appear as they
 * complete) with thumbnails of images; download and delete.
 */
import { memo, useEffect, useState, useSyncExternalStore, type DragEvent } from 'react'
import type { Attachment, TaskHandle, UploadHandle, UploadProgress } from 'tasksync/client'
import { useClient } from 'tasksync/react'

const sizeText = (n: number) => (n < 1024 ? `${n} B` : n < 1024 ** 2 ? `${(n / 1024).toFixed(1)} KB` : `${(n / 1024 ** 2).toFixed(1)} MB`)

function useAttachments(task: TaskHandle): Attachment[] {
  const live = task.attachments
  return useSyncExternalStore(
    (onChange) => live.on('change', onChange),
    () => live.list,
  )
}

export const Attachments = memo(function Attachments({ task, readOnly }: { task: TaskHandle; readOnly: boolean }) {
  const items = useAttachments(task)
  const [uploads, setUploads] = useState<Record<string, UploadProgress & { name: string; error?: string }>>({})
  const [over, setOver] = useState(false)

  const track = (h: UploadHandle, name: string) => {
    const update = (p: UploadProgress, error?: string) => setUploads((u) => ({ ...u, [h.id]: { ...p, name, error } }))
    update(h.progress)
    h.on('progress', (p) => update(p))
    h.done.then(
      () => setUploads(({ [h.id]: _, ...rest }) => rest),
      (err: Error) => update(h.progress, err.message),
    )
  }
  const add = async (files: FileList | File[]) => {
    for (const file of Array.from(files)) track(await task.attach(file, { name: file.name }), file.name)
  }
  const onDrop = (e: DragEvent) => {
    e.preventDefault()
    setOver(false)
    if (!readOnly && e.dataTransfer.files.length) void add(e.dataTransfer.files)
  }

  return (
    <section className="attachments" aria-labelledby="attachments-h">
      <h2 id="attachments-h">Files {items.length > 0 && <span className="n">{items.length}</span>}</h2>
      <ul className="attachment-list">
        {items.map((a) => (
          <AttachmentItem key={a.id} a={a} readOnly={readOnly} />
        ))}
      </ul>
      {Object.entries(uploads).map(([id, u]) => (
        <div className="upload" key={id}>
          <span>{u.name}</span>
          <progress max={u.total || 1} value={u.loaded} aria-label={`Uploading ${u.name}`} />
          <span className="muted">{u.error ? `failed: ${u.error}` : u.status === 'waiting' ? 'waiting for the network' : `${Math.round((100 * u.loaded) / (u.total || 1))} %`}</span>
        </div>
      ))}
      {!readOnly && (
        <div
          className={over ? 'dropzone over' : 'dropzone'}
          data-testid="dropzone"
          onDragOver={(e) => {
            e.preventDefault()
            setOver(true)
          }}
          onDragLeave={() => setOver(false)}
          onDrop={onDrop}
        >
          <label>
            Drop files here or <span className="link">choose files</span>
            <input type="file" multiple className="sr-only" onChange={(e) => e.target.files && void add(e.target.files)} />
          </label>
        </div>
      )}
    </section>
  )
})

function AttachmentItem({ a, readOnly }: { a: Attachment; readOnly: boolean }) {
  const client = useClient()
  const [thumb, setThumb] = useState<string | null>(null)
  useEffect(() => {
    if (!a.thumbnail) return
    let url: string | null = null
    let gone = false
    client.attachments.thumbnail(a.taskId, a.id).then(
      (blob) => {
        if (gone) return
        url = URL.createObjectURL(blob)
        setThumb(url)
      },
      () => {},
    )
    return () => {
      gone = true
      if (url) URL.revokeObjectURL(url)
    }
  }, [a.id, a.thumbnail])
  const download = async () => {
    const res = await client.attachments.download(a.taskId, a.id)
    const url = URL.createObjectURL(await res.blob())
    const link = document.createElement('a')
    link.href = url
    link.download = a.name
    link.click()
    setTimeout(() => URL.revokeObjectURL(url), 10_000)
  }
  return (
    <li className="attachment" data-attachment={a.name}>
      {thumb ? <img src={thumb} alt="" className="thumb" width={64} height={64} /> : <svg className="thumb file-icon" aria-hidden="true" viewBox="0 0 24 24" width={64} height={64}>
          <path d="M6 2h8l4 4v16H6z M14 2v4h4" fill="none" stroke="currentColor" strokeWidth="1.5" />
        </svg>}
      <button type="button" className="link" onClick={() => void download()}>
        {a.name}
      </button>
      <span className="muted">{sizeText(a.size)}</span>
      {!readOnly && (
        <button type="button" className="small" aria-label={`Delete ${a.name}`} onClick={() => void client.attachments.remove(a.taskId, a.id)}>
          Delete
        </button>
      )}
    </li>
  )
}
