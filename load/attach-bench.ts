/**
 * Attachment upload benchmark: one file (1 GiB by default) uploaded through the
 * SDK in Node (`task.attach(fileSource(path))`: hashed, opened, 8 MiB chunks, at
 * most 5 in flight, completed) to a real server process, once with the disk store
 * and once with an S3-compatible server (s3rver, in this process, on loopback).
 * Reports throughput and the server process's peak RSS growth over its idle RSS
 * (sampled from /proc every 50 ms): it must stay under 64 MiB, since bytes are
 * streamed, never buffered whole. With --write-docs the figures go into
 * docs/benchmarks.md (section "Attachments").
 *
 *   npx tsx load/attach-bench.ts [--mb 1024] [--store disk|s3|both] [--write-docs]
 *   env BENCH_PG_URL (admin URL, default postgres://postgres@127.0.0.1:5432/postgres)
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { createWriteStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { once } from 'node:events'
import { createServer } from 'node:net'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import postgres from 'postgres'
import WebSocket from 'ws'
import S3rver from 's3rver'
import { TaskSyncClient, type WebSocketConstructor } from '../src/client/index.js'
import { fileSource, nodeSha256 } from '../src/client/node.js'

const { values } = parseArgs({
  options: {
    mb: { type: 'string', default: '1024' },
    store: { type: 'string', default: 'both' },
    'write-docs': { type: 'boolean', default: false },
  },
})
const MB = Number(values.mb)
const stores = values.store === 'both' ? ['disk', 's3'] : [values.store as string]
const adminUrl = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'
const work = mkdtempSync(join(tmpdir(), 'tasksync-attachbench-'))
const loadAtStart = loadavg()[0]

async function freePort(): Promise<number> {
  const s = createServer()
  s.listen(0, '127.0.0.1')
  await once(s, 'listening')
  const port = (s.address() as { port: number }).port
  s.close()
  return port
}

const rssOf = (pid: number): number => {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m ? Number(m[1]) * 1024 : 0
}

async function makeFile(path: string, mb: number): Promise<void> {
  const block = randomBytes(16 * 1024 * 1024)
  const out = createWriteStream(path)
  for (let written = 0; written < mb; written += 16) {
    block.writeUInt32LE(written, 0)
    if (!out.write(Buffer.from(block.subarray(0, Math.min(16, mb - written) * 1024 * 1024)))) await once(out, 'drain')
  }
  out.end()
  await once(out, 'finish')
}

/** The run in progress, for a stop from outside. */
let running: { server: ChildProcess; dbName: string } | null = null

interface Result {
  store: string
  mb: number
  hashS: number
  uploadS: number
  totalS: number
  mbPerS: number
  idleRssMiB: number
  peakGrowthMiB: number
}

async function bench(store: string, file: string): Promise<Result> {
  const dbName = `tasksync_attachbench_${randomBytes(4).toString('hex')}`
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} })
  await admin.unsafe(`create database ${dbName}`)
  const dbUrl = new URL(adminUrl)
  dbUrl.pathname = '/' + dbName
  let s3: S3rver | null = null
  const env: Record<string, string> = {}
  if (store === 's3') {
    const dir = mkdtempSync(join(work, 's3-'))
    s3 = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory: dir, configureBuckets: [{ name: 'bench', configs: [] }] })
    const { port } = await s3.run()
    Object.assign(env, { S3_ENDPOINT: `http://127.0.0.1:${port}`, S3_BUCKET: 'bench', S3_ACCESS_KEY_ID: 'S3RVER', S3_SECRET_ACCESS_KEY: 'S3RVER', S3_FORCE_PATH_STYLE: 'true' })
  }
  const port = await freePort()
  const server: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    env: {
      ...process.env,
      ...env,
      NODE_ENV: 'test',
      HOST: '127.0.0.1',
      PORT: String(port),
      DATABASE_URL: dbUrl.toString(),
      DATA_DIR: mkdtempSync(join(work, 'data-')),
      JWT_SECRET: randomBytes(32).toString('hex'),
      LOG_LEVEL: 'warn',
      WEB_APP: 'false',
      HOUSEKEEPING_INTERVAL_S: '0',
      SCRYPT_LOG_N: '10',
      ATTACHMENT_MAX_BYTES: String(4 * 1024 ** 3),
      ORG_STORAGE_QUOTA_BYTES: String(16 * 1024 ** 3),
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  })
  const url = `http://127.0.0.1:${port}`
  running = { server, dbName }
  try {
    for (let i = 0; ; i++) {
      try {
        if ((await fetch(`${url}/api/health`)).ok) break
      } catch {}
      if (i > 600) throw new Error('the server did not start')
      await new Promise((r) => setTimeout(r, 100))
    }
    const email = `bench-${randomBytes(4).toString('hex')}@example.test`
    const reg = await fetch(`${url}/api/auth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ orgName: 'Bench', email, password: 'a long bench password', displayName: 'Bench' }),
    })
    if (reg.status !== 201) throw new Error(`register: ${reg.status}`)
    const client = new TaskSyncClient({
      url,
      credentials: { email, password: 'a long bench password', device: { name: 'bench', platform: 'node' } },
      WebSocket: WebSocket as unknown as WebSocketConstructor,
      sha256: nodeSha256,
    })
    await client.connect()
    const task = client.createTask({ title: 'bench' })
    await client.whenSynced({ timeoutMs: 30_000 })
    // Warm-up: JIT, pools and the store's first writes, then the idle RSS.
    const warm = join(work, 'warm.bin')
    writeFileSync(warm, randomBytes(32 * 1024 * 1024))
    await (await task.attach(await fileSource(warm))).done
    await new Promise((r) => setTimeout(r, 500))
    const pid = server.pid!
    const idle = rssOf(pid)
    let peak = idle
    const sampler = setInterval(() => (peak = Math.max(peak, rssOf(pid))), 50)
    const t0 = performance.now()
    let tUp = 0
    const h = await task.attach(await fileSource(file), { onProgress: (p) => void (p.status === 'uploading' && !tUp && (tUp = performance.now())) })
    const done = await h.done
    const t1 = performance.now()
    clearInterval(sampler)
    peak = Math.max(peak, rssOf(pid))
    if (done.size !== MB * 1024 * 1024) throw new Error('wrong size')
    await client.close()
    const uploadS = (t1 - tUp) / 1000
    return {
      store,
      mb: MB,
      hashS: (tUp - t0) / 1000,
      uploadS,
      totalS: (t1 - t0) / 1000,
      mbPerS: (MB * 1.048576) / uploadS,
      idleRssMiB: idle / 2 ** 20,
      peakGrowthMiB: (peak - idle) / 2 ** 20,
    }
  } finally {
    server.kill('SIGTERM')
    await once(server, 'exit').catch(() => {})
    await s3?.close()
    await admin.unsafe(`drop database if exists ${dbName} with (force)`).catch(() => {})
    await admin.end()
    running = null
  }
}

// A benchmark stopped from outside (timeout, Ctrl-C) still leaves nothing behind.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    running?.server.kill('SIGTERM')
    rmSync(work, { recursive: true, force: true })
    const admin = postgres(adminUrl, { max: 1, onnotice: () => {} })
    const drop = running ? admin.unsafe(`drop database if exists ${running.dbName} with (force)`) : Promise.resolve()
    void drop.catch(() => {}).finally(() => process.exit(130))
  })
}
const file = join(work, 'file.bin')
await makeFile(file, MB)
const results: Result[] = []
try {
  for (const store of stores) {
    const r = await bench(store, file)
    results.push(r)
    console.log(
      `${r.store}: ${r.mb} MiB in ${r.totalS.toFixed(1)} s (hash ${r.hashS.toFixed(1)} s, upload+complete ${r.uploadS.toFixed(1)} s) = ${r.mbPerS.toFixed(1)} MB/s; server RSS idle ${r.idleRssMiB.toFixed(0)} MiB, peak growth ${r.peakGrowthMiB.toFixed(1)} MiB`,
    )
  }
} finally {
  rmSync(work, { recursive: true, force: true })
}
const over = results.filter((r) => r.peakGrowthMiB >= 64)
if (values['write-docs']) {
  const rows = results
    .map((r) => `| ${r.store} | ${r.mb} MiB | ${r.hashS.toFixed(1)} s | ${r.uploadS.toFixed(1)} s | ${r.mbPerS.toFixed(1)} MB/s | ${r.idleRssMiB.toFixed(0)} MiB | ${r.peakGrowthMiB.toFixed(1)} MiB |`)
    .join('\n')
  const section = `## Attachments

\`npx tsx load/attach-bench.ts --mb ${MB} --store ${values.store} --write-docs\` (${cpus().length} cores, load average ${loadAtStart.toFixed(1)} at start, ${new Date().toISOString().slice(0, 10)}): one file uploaded through the SDK in Node (\`task.attach(fileSource(path))\`: SHA-256 first, then 8 MiB chunks, at most 5 in flight, then complete, which joins the parts and re-reads them to check the SHA-256) to a real server process with PostgreSQL; S3 is s3rver on loopback in the benchmark's process. MB/s = 10^6 bytes per second of upload + complete (hashing excluded). RSS growth = the server process's peak RSS during the upload (sampled every 50 ms from /proc) minus its RSS at rest after a 32 MiB warm-up upload; the bound is 64 MiB.

| store | file | SDK hash | upload + complete | throughput | server RSS at rest | server peak RSS growth |
|---|---|---|---|---|---|---|
${rows}
`
  const path = 'docs/benchmarks.md'
  let doc = readFileSync(path, 'utf8')
  doc = /\n## Attachments\n[\s\S]*?(?=\n## |$)/.test(doc) ? doc.replace(/\n## Attachments\n[\s\S]*?(?=\n## |$)/, '\n' + section) : doc.trimEnd() + '\n\n' + section
  writeFileSync(path, doc)
}
if (over.length) {
  console.error(`server RSS grew by 64 MiB or more: ${over.map((r) => r.store).join(', ')}`)
  process.exit(1)
}
process.exit(0)
