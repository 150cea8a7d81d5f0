/** The gateway's Prometheus metrics, on the app's registry. */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client'
import type { Gateway, GatewayMetrics } from './gateway.js'

/**
 * Registers the socket gauge, message counters, ack latency and slow-socket cuts.
 * Message counts are plain numbers on the gateway, read at scrape time: the hot
 * path does no metric work per message.
 */
export function registerWsMetrics(registry: Registry, gateway: () => Gateway | undefined): GatewayMetrics {
  new Gauge({
    name: 'tasksync_ws_sockets',
    help: 'Open WebSocket connections on this instance',
    registers: [registry],
    collect() {
      this.set(gateway()?.socketCount ?? 0)
    },
  })
  let seenIn = 0
  let seenOut = 0
  new Counter({
    name: 'tasksync_ws_messages_in_total',
    help: 'WebSocket messages received',
    registers: [registry],
    collect() {
      const n = gateway()?.stats.in ?? seenIn
      this.inc(n - seenIn)
      seenIn = n
    },
  })
  new Counter({
    name: 'tasksync_ws_messages_out_total',
    help: 'WebSocket messages queued for sending',
    registers: [registry],
    collect() {
      const n = gateway()?.stats.out ?? seenOut
      this.inc(n - seenOut)
      seenOut = n
    },
  })
  const ack = new Histogram({
    name: 'tasksync_ws_ack_seconds',
    help: 'Time from receiving a create or op to its commit (the ack)',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  })
  const cuts = new Counter({
    name: 'tasksync_ws_slow_closed_total',
    help: 'Sockets closed with 4009 because their unsent data passed the limit',
    registers: [registry],
  })
  return { ackLatency: (s) => ack.observe(s), cut: () => cuts.inc() }
}
