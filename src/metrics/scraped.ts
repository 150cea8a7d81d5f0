/**
 * A Prometheus counter that mirrors a running total kept elsewhere (a plain number a
 * hot path increments): read at scrape time and advanced by what grew since the last
 * scrape, so the hot path never touches prom-client.
 */
import { Counter, type Registry } from 'prom-client'

export function scrapedCounter(registry: Registry, name: string, help: string, read: () => number): Counter {
  let seen = 0
  return new Counter({
    name,
    help,
    registers: [registry],
    collect() {
      const n = read()
      this.inc(n - seen)
      seen = n
    },
  })
}
