/**
 * The service worker: keeps the app shell (index.html and the hashed assets of
 * this build) so the app opens without a network. Pages are asked from the
 * network first (a deploy shows at once) and answered from the cache when it
 * fails; hashed assets never change, so the cache answers them. API calls and
 * the socket are left alone: the SDK's own storage (IndexedDB) holds the data.
 */
declare const __SHELL__: string[]
declare const __VERSION__: string
// (Typed loosely: the DOM lib of the project's tsconfig has no ServiceWorkerGlobalScope.)
/* eslint-disable @typescript-eslint/no-explicit-any */
const sw = self as any
const CACHE = `tasksync-shell-${__VERSION__}`

sw.addEventListener('install', (event: any) => {
  event.waitUntil(
    caches
      .open(CACHE)
      .then((cache) => cache.addAll(__SHELL__))
      .then(() => sw.skipWaiting()),
  )
})

sw.addEventListener('activate', (event: any) => {
  event.waitUntil(
    caches
      .keys()
      .then((keys) => Promise.all(keys.filter((k) => k.startsWith('tasksync-shell-') && k !== CACHE).map((k) => caches.delete(k))))
      .then(() => sw.clients.claim()),
  )
})

const isApi = (path: string) => /^\/(api|ws|docs|health|metrics|\.well-known)(\/|$)/.test(path)

sw.addEventListener('fetch', (event: any) => {
  const req: Request = event.request
  const url = new URL(req.url)
  if (req.method !== 'GET' || url.origin !== sw.location.origin || isApi(url.pathname)) return
  if (req.mode === 'navigate') {
    event.respondWith(
      fetch(req).catch(async () => (await caches.match('/', { cacheName: CACHE })) ?? Response.error()),
    )
    return
  }
  event.respondWith(caches.match(req, { cacheName: CACHE }).then((hit) => hit ?? fetch(req)))
})
