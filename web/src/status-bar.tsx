/** Always visible: online / syncing / offline, the edits waiting, and the switch to work offline. */
import { useEffect, useState } from 'react'
import type { TaskSyncClient } from 'tasksync/client'
import { useStatus } from 'tasksync/react'

const LABEL = { online: 'Online', syncing: 'Syncing', connecting: 'Connecting', offline: 'Offline' } as const

export function StatusBar({ client }: { client: TaskSyncClient }) {
  const { status, pending } = useStatus()
  const [off, setOff] = useState(() => localStorage.getItem('tasksync.offline') === '1')
  const toggle = () => {
    const next = !off
    setOff(next)
    localStorage.setItem('tasksync.offline', next ? '1' : '0')
    if (next) client.goOffline()
    else client.goOnline()
  }
  const [netOnline, setNetOnline] = useState(navigator.onLine)
  useEffect(() => {
    const on = () => setNetOnline(navigator.onLine)
    addEventListener('online', on)
    addEventListener('offline', on)
    return () => {
      removeEventListener('online', on)
      removeEventListener('offline', on)
    }
  }, [])
  // Reconnecting without a network is being offline, as far as a person can tell.
  const shown = status === 'connecting' && !netOnline ? 'offline' : status
  return (
    <div className="status" data-status={shown}>
      <span role="status" aria-live="polite" data-testid="connection">
        <span className={`dot ${shown}`} aria-hidden="true" />
        {LABEL[shown]}
        {pending > 0 && <span data-testid="pending"> · {pending === 1 ? '1 edit waiting' : `${pending} edits waiting`}</span>}
      </span>
      <button type="button" className="switch" aria-pressed={off} onClick={toggle}>
        {off ? 'Go online' : 'Work offline'}
      </button>
    </div>
  )
}
