/**
 * A TCP proxy in front of the app that the test can cut: every connection
 * through it is destroyed and new ones are reset, as when a laptop loses its
 * network. The browser context under test talks to the app only through it.
 */
import { createServer, connect, type Socket } from 'node:net'

export interface CutProxy {
  url: string
  cut(): void
  restore(): void
  close(): Promise<void>
}

export async function cutProxy(target: string, t: { teardown(fn: () => unknown): void }): Promise<CutProxy> {
  const { hostname, port } = new URL(target)
  const open = new Set<Socket>()
  let down = false
  const server = createServer((client) => {
    if (down) return client.resetAndDestroy()
    const upstream = connect(Number(port), hostname)
    open.add(client)
    open.add(upstream)
    const drop = () => {
      client.destroy()
      upstream.destroy()
      open.delete(client)
      open.delete(upstream)
    }
    client.on('error', drop).on('close', drop)
    upstream.on('error', drop).on('close', drop)
    client.pipe(upstream).pipe(client)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address() as { port: number }
  const close = () =>
    new Promise<void>((resolve) => {
      for (const s of open) s.destroy()
      server.close(() => resolve())
    })
  t.teardown(close)
  return {
    url: `http://127.0.0.1:${address.port}`,
    cut() {
      down = true
      for (const s of open) s.resetAndDestroy?.() ?? s.destroy()
      open.clear()
    },
    restore() {
      down = false
    },
    close,
  }
}
