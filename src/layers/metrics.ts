/**
 * Exporting the replica's figures (src/actors/replica_metrics.ts) to the world, the two ways an
 * operator asks for with `scarab start`:
 * - `--metrics=HOST:PORT`: an HTTP server answering `GET /metrics` with the Prometheus text
 *   exposition format (version 0.0.4), formatted from the metric registry at each scrape.
 * - `--statsd=HOST:PORT`: statsd datagrams over UDP, as TigerBeetle's `--experimental --statsd`,
 *   flushed every `statsdFlushMs` in datagrams of at most `statsdDatagramBytesMax` bytes, with the
 *   series' labels as DogStatsD tags (`|#replica:0,operation:create_transfers`). Counters are sent
 *   as their increase since the last flush (`|c`, skipped when nothing moved), gauges as their
 *   value (`|g`), histograms as their count and sum increases (`.count`, `.sum`, `|c`) and the mean
 *   of the interval (`.mean`, `|g`).
 *
 * Both are layers that only start something (a server, a socket and its flushing fiber) and stop
 * it when their scope closes; `scarab start` loads this module only when one of the options is
 * given, so a replica started without them starts as before. Nothing here runs on the replica's
 * hot path: the registry is read once a flush or a scrape.
 */
import { createSocket } from "node:dgram"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { isIPv6 } from "node:net"
import { Data, Effect, Layer, Metric } from "effect"
import * as PrometheusMetrics from "effect/observability/PrometheusMetrics"
import { assert } from "../assert.ts"

export interface MetricsAddress {
  readonly host: string
  readonly port: number
}

/** How often the statsd exporter sends: TigerBeetle's statsd emitter also flushes about once a second. */
export const statsdFlushMs = 1000
/**
 * The largest statsd datagram: lines are packed up to this many bytes, so a datagram fits an
 * Ethernet frame's payload (1500) with IPv6 and UDP headers to spare, and is never fragmented.
 */
export const statsdDatagramBytesMax = 1400
/** The HTTP path the Prometheus endpoint serves; anything else is a 404. */
export const prometheusPath = "/metrics"

/** `GET /metrics` on `address` (port 0: one the kernel picks, named in the log line). */
export const layerPrometheusHttp = (address: MetricsAddress) => Layer.effectDiscard(Effect.gen(function* () {
  assert(address.port >= 0 && address.port <= 65535, () => `port ${address.port}`)
  const context = yield* Effect.context<never>()
  const server = createServer((request, response) => {
    const path = (request.url ?? "").split("?")[0]
    if (request.method !== "GET" || path !== prometheusPath) {
      response.writeHead(404, { "content-type": "text/plain" }).end(`scarab serves metrics at GET ${prometheusPath}\n`)
      return
    }
    const body = PrometheusMetrics.formatUnsafe(context)
    response.writeHead(200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" }).end(body)
  })
  const port = yield* Effect.acquireRelease(
    Effect.callback<number, MetricsListenError>((resume) => {
      server.once("error", (error) => resume(Effect.fail(new MetricsListenError({
        message: `--metrics=${hostText(address.host)}:${address.port}: cannot listen: ${error.message}`
      }))))
      server.listen(address.port, address.host, () => resume(Effect.succeed((server.address() as AddressInfo).port)))
    }),
    () => Effect.callback<void>((resume) => {
      server.close(() => resume(Effect.void))
      server.closeAllConnections()
    })
  )
  assert(port > 0, () => "the server listens on a port")
  yield* Effect.logInfo(`metrics: Prometheus text format on http://${hostText(address.host)}:${port}${prometheusPath}`)
}))

/** Statsd datagrams to `address` every `flushMs`. */
export const layerStatsd = (address: MetricsAddress, flushMs = statsdFlushMs) => Layer.effectDiscard(Effect.gen(function* () {
  assert(address.port > 0 && address.port <= 65535, () => `statsd port ${address.port}`)
  assert(flushMs > 0, () => "a flush interval")
  const context = yield* Effect.context<never>()
  const socket = yield* Effect.acquireRelease(
    Effect.sync(() => {
      const created = createSocket(isIPv6(address.host) ? "udp6" : "udp4")
      // Nobody listening is no error of ours: statsd is fire and forget.
      created.on("error", () => {})
      return created
    }),
    (created) => Effect.sync(() => created.close())
  )
  const lines = statsdLines()
  const flush = () => {
    for (const datagram of packDatagrams(lines(Metric.snapshotUnsafe(context)), statsdDatagramBytesMax)) {
      socket.send(datagram, address.port, address.host)
    }
  }
  yield* Effect.forkScoped(Effect.forever(Effect.andThen(Effect.sleep(flushMs), Effect.sync(flush))))
  yield* Effect.logInfo(`metrics: statsd datagrams to ${hostText(address.host)}:${address.port} every ${flushMs} ms`)
}))

/** The metrics port is taken, or the host is not ours: `scarab start` says so and exits 1. */
export class MetricsListenError extends Data.TaggedError("MetricsListenError")<{ readonly message: string }> {}

/**
 * The statsd lines of one flush: a function of the registry's snapshot that remembers the totals
 * it last sent, so that counters go out as increases.
 */
export function statsdLines(): (snapshot: ReadonlyArray<Metric.Metric.Snapshot>) => Array<string> {
  const sent = new Map<string, { total: number; sum: number }>()
  return (snapshot) => {
    const lines: Array<string> = []
    for (const metric of snapshot) {
      const name = statsdName(metric.id)
      const tags = statsdTags(metric.attributes)
      const key = name + tags
      const last = sent.get(key) ?? { total: 0, sum: 0 }
      switch (metric.type) {
        case "Counter": {
          const total = Number(metric.state.count)
          if (total !== last.total) lines.push(`${name}:${total - last.total}|c${tags}`)
          sent.set(key, { total, sum: 0 })
          break
        }
        case "Gauge":
          lines.push(`${name}:${Number(metric.state.value)}|g${tags}`)
          break
        case "Histogram": {
          const { count, sum } = metric.state
          if (count !== last.total) {
            const increase = sum - last.sum
            lines.push(`${name}.count:${count - last.total}|c${tags}`, `${name}.sum:${increase}|c${tags}`,
              `${name}.mean:${increase / (count - last.total)}|g${tags}`)
          }
          sent.set(key, { total: count, sum })
          break
        }
        default:
          // Frequencies and summaries: the replica keeps none.
      }
    }
    return lines
  }
}

/** Lines joined by newlines into datagrams of at most `bytesMax` bytes each (a line longer than that is dropped). */
export function packDatagrams(lines: ReadonlyArray<string>, bytesMax: number): Array<Buffer> {
  assert(bytesMax > 0, () => "a datagram holds bytes")
  const datagrams: Array<Buffer> = []
  let pending = ""
  for (const line of lines) {
    if (Buffer.byteLength(line) > bytesMax) continue
    const joined = pending === "" ? line : `${pending}\n${line}`
    if (Buffer.byteLength(joined) <= bytesMax) {
      pending = joined
      continue
    }
    datagrams.push(Buffer.from(pending))
    pending = line
  }
  if (pending !== "") datagrams.push(Buffer.from(pending))
  assert(datagrams.every((datagram) => datagram.length <= bytesMax), () => `every datagram within ${bytesMax} bytes`)
  return datagrams
}

/** `scarab_requests_received_total` → `scarab.requests_received`: statsd names are dotted, and counters carry no `_total`. */
function statsdName(id: string): string {
  return id.replace(/_total$/, "").replace(/^scarab_/, "scarab.").replace(/[^a-zA-Z0-9_.]/g, "_")
}

function statsdTags(attributes: Readonly<Record<string, string>> | undefined): string {
  if (attributes === undefined) return ""
  const tags = Object.entries(attributes).map(([key, value]) => `${key}:${value.replace(/[,|#:\n]/g, "_")}`)
  return tags.length === 0 ? "" : `|#${tags.join(",")}`
}

const hostText = (host: string) => host.includes(":") ? `[${host}]` : host
