/** Tokens: login, renewal before expiry sent in-band, a spent refresh token answered by a new login. */
import t from 'tap'
import { memoryStorage } from '../../src/client/index.js'
import { nextSent } from './fake-socket.js'
import { setup } from './setup.js'

const session = (n: number, expiresIn: number) => ({
  accessToken: `access-${n}`,
  refreshToken: `refresh-${n}`,
  expiresIn,
  user: { id: 'user-1' },
  organization: { id: 'org-1' },
  device: { id: 'device-1' },
})

t.test('credentials: login, renewal sent in-band as auth, device id kept for the next login', async (t) => {
  const bodies: { path: string; body: unknown }[] = []
  let n = 0
  const storage = memoryStorage()
  const s = await setup(t, {
    credentials: true,
    storage,
    fetch: (method, path, body) => {
      bodies.push({ path, body })
      if (path === '/api/auth/login') return { status: 200, body: session(++n, 2) }
      if (path === '/api/auth/refresh') return { status: 200, body: session(++n, 60) }
      return undefined
    },
  })
  t.match(s.sock.url, /\/ws\?access_token=access-1$/)
  t.match(bodies[0], { path: '/api/auth/login', body: { email: 'a@example.test', password: 'pw', device: { name: 'phone', platform: 'test' } } })
  const auth = await nextSent(s.sock, 'auth', 5000)
  t.same(auth, { type: 'auth', token: 'access-2' }, 'renewed at 80% of a 2 s lifetime, sent on the open socket')
  t.match(bodies[1], { path: '/api/auth/refresh', body: { refreshToken: 'refresh-1' } })
  await s.client.close()

  const again = await setup(t, { credentials: true, storage, fetch: (m, path, body) => (bodies.push({ path, body }), path === '/api/auth/login' ? { status: 200, body: session(9, 60) } : undefined) })
  t.match(bodies.at(-1), { path: '/api/auth/login', body: { device: { id: 'device-1' } } }, 'the stored device id is reused: the clientId stays bound to it')
  void again
})

t.test('a refused refresh token falls back to a new login', async (t) => {
  const paths: string[] = []
  let n = 0
  const s = await setup(t, {
    credentials: true,
    fetch: (method, path) => {
      paths.push(path)
      if (path === '/api/auth/login') return { status: 200, body: session(++n, 2) }
      if (path === '/api/auth/refresh') return { status: 401, body: { error: { code: 'unauthorized', message: 'spent' } } }
      return undefined
    },
  })
  const auth = await nextSent(s.sock, 'auth', 5000)
  t.same(auth.token, 'access-2')
  t.same(paths.slice(0, 3), ['/api/auth/login', '/api/auth/refresh', '/api/auth/login'])
})
