/**
 * The web app (web/, built into dist/web by `npm run build`), served by the
 * server itself: hashed files under /assets/ are cached for a year (their name
 * changes with their content); index.html, the service worker and the manifest
 * are revalidated on every load, so a deploy reaches every browser. Each page
 * route of the app answers index.html; every other path keeps the API's JSON 404.
 */
import { existsSync } from 'node:fs'
import { basename, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import fp from 'fastify-plugin'
import fastifyStatic from '@fastify/static'
import { TaskSyncError } from '../protocol/errors.js'

/** The client-side routes of web/src/routes.ts: a reload or a shared link on any of them opens the app. */
export const APP_ROUTES = ['/', '/login', '/register', '/board', '/dashboard', '/tasks/:id', '/admin', '/admin/:section'] as const

/** Files at the root of dist/web that must never be cached without revalidation. */
const ROOT_FILES = ['sw.js', 'manifest.webmanifest', 'favicon.svg'] as const

/** dist/web beside the compiled server (dist/src/http → dist/web), or under dist/ when running from src/ with tsx. */
export function webDir(): string {
  const up = fileURLToPath(new URL('../../', import.meta.url))
  return basename(up) === 'dist' ? join(up, 'web') : join(up, 'dist', 'web')
}

export default fp(
  async (app) => {
    const root = webDir()
    if (!existsSync(join(root, 'index.html'))) {
      app.log.warn(`web app not built (no ${join(root, 'index.html')}): run npm run build; serving the API only`)
      app.get('/', { schema: { hide: true } }, async () => {
        throw new TaskSyncError('unavailable', 'the web app is not built on this server: run npm run build')
      })
      return
    }
    await app.register(fastifyStatic, {
      root: join(root, 'assets'),
      prefix: '/assets/',
      // The build writes .br and .gz beside each file: sent as they are, no compression per request.
      preCompressed: true,
      maxAge: '365d',
      immutable: true,
      index: false,
    })
    const fresh = { maxAge: 0, immutable: false, lastModified: true, cacheControl: false } as const
    const noCache = 'no-cache'
    for (const file of ROOT_FILES) {
      app.get(`/${file}`, { schema: { hide: true } }, (_request, reply) => reply.header('cache-control', noCache).sendFile(file, root, fresh))
    }
    for (const route of APP_ROUTES) {
      app.get(route, { schema: { hide: true } }, (_request, reply) => reply.header('cache-control', noCache).type('text/html; charset=utf-8').sendFile('index.html', root, fresh))
    }
  },
  { name: 'web-app', dependencies: ['http-base'] },
)
