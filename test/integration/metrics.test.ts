/**
 * The replica's figures exported (issue 19, Operations → Metrics), end to end: a `scarab start`
 * process with `--metrics` serves Prometheus text at GET /metrics whose figures move as the
 * official client (`tigerbeetle-node@0.17.9`) sends requests, through a checkpoint; the text
 * passes `promtool check metrics` (Debian's `prometheus` package; .ci/run installs it) and,
 * whether promtool is there or not, a strict reading of the exposition format here. With
 * `--statsd`, datagrams arrive at a UDP socket the test binds, in statsd format with DogStatsD
 * tags and the expected names, each within the datagram bound. Every process is killed after.
 */
import { spawnSync } from "node:child_process"
import { createSocket, type Socket } from "node:dgram"
import { createRequire } from "node:module"
import { afterEach, describe, expect, it } from "vitest"
import { Context, Metric } from "effect"
import { packDatagrams, statsdDatagramBytesMax, statsdLines } from "../../src/layers/metrics.ts"
import { type DataDirectory, format, type RunningReplica, startReplica, temporaryDataFile } from "./replica_process.ts"

const require = createRequire(import.meta.url)
const tb: typeof import("tigerbeetle-node") = require("tigerbeetle-node")
type Client = import("tigerbeetle-node").Client

let replica: RunningReplica | undefined
let data: DataDirectory | undefined
let client: Client | undefined
let socket: Socket | undefined

afterEach(async () => {
  client?.destroy()
  client = undefined
  socket?.close()
  socket = undefined
  await replica?.kill()
  replica = undefined
  data?.remove()
  data = undefined
})

async function started(flags: ReadonlyArray<string>): Promise<RunningReplica> {
  data = temporaryDataFile()
  format(data.path)
  replica = await startReplica(data.path, 0, flags)
  client = tb.createClient({ cluster_id: 0n, replica_addresses: [String(replica.port)] })
  return replica
}

/** Two accounts and a batch of ten transfers between them, then `lookups` single lookups (one op each). */
async function load(c: Client, lookups: number): Promise<void> {
  const account = (id: bigint) => ({
    id, debits_pending: 0n, debits_posted: 0n, credits_pending: 0n, credits_posted: 0n, user_data_128: 0n, user_data_64: 0n,
    user_data_32: 0, reserved: 0, ledger: 1, code: 1, flags: 0, timestamp: 0n
  })
  expect(await c.createAccounts([account(1n), account(2n)])).toEqual([
    expect.objectContaining({ status: tb.CreateAccountStatus.created }), expect.objectContaining({ status: tb.CreateAccountStatus.created })
  ])
  const transfers = Array.from({ length: 10 }, (_, i) => ({
    id: BigInt(100 + i), debit_account_id: 1n, credit_account_id: 2n, amount: 1n, pending_id: 0n, user_data_128: 0n, user_data_64: 0n,
    user_data_32: 0, timeout: 0, ledger: 1, code: 1, flags: 0, timestamp: 0n
  }))
  const results = await c.createTransfers(transfers)
  expect(results.every((result) => result.status === tb.CreateTransferStatus.created)).toBe(true)
  for (let i = 0; i < lookups; i++) expect((await c.lookupAccounts([1n]))[0]!.debits_posted).toBe(10n)
}

describe("scarab start --metrics: Prometheus text at GET /metrics", () => {
  it("serves figures that move with the load, in a valid exposition format", async () => {
    const running = await started(["--metrics=127.0.0.1:0"])
    const url = await running.waitFor((output) => /metrics: Prometheus text format on (http:\S+)/.exec(output)?.[1], "the metrics address")
    const before = parseExposition(await scrape(url))
    expect(before.get('scarab_requests_received_total{cluster="0",replica="0"}')).toBe(0)
    expect(before.get('scarab_status{cluster="0",replica="0"}')).toBe(0)

    // The test profile checkpoints every 32 ops: 40 requests pass one.
    await load(client!, 37)
    // Gauges read off the core are sampled once a second (of ticks: later on a loaded machine), and
    // the checkpoint at op 32 may still be writing as the last reply arrives.
    const sessions = 'scarab_client_sessions{cluster="0",replica="0"}'
    let text = await scrape(url)
    const checkpoints = 'scarab_checkpoint_duration_seconds_count{cluster="0",replica="0"}'
    const settled = (figures: Map<string, number>) => figures.get(sessions) === 1 && (figures.get(checkpoints) ?? 0) >= 1
    for (const deadline = Date.now() + 20_000; !settled(parseExposition(text)) && Date.now() < deadline;) {
      await new Promise((resolve) => setTimeout(resolve, 200))
      text = await scrape(url)
    }
    const after = parseExposition(text)
    const figure = (name: string, labels = 'cluster="0",replica="0"') => {
      const value = after.get(`${name}{${labels}}`)
      expect(value, `${name}{${labels}} in\n${text}`).toBeTypeOf("number")
      return value!
    }
    expect(figure("scarab_requests_received_total")).toBeGreaterThanOrEqual(40)
    expect(figure("scarab_prepares_total")).toBeGreaterThanOrEqual(40)
    expect(figure("scarab_commits_total", 'operation="create_transfers",cluster="0",replica="0"')).toBe(1)
    expect(figure("scarab_commits_total", 'operation="create_accounts",cluster="0",replica="0"')).toBe(1)
    expect(figure("scarab_commits_total", 'operation="lookup_accounts",cluster="0",replica="0"')).toBe(37)
    // Batch sizes of the creates: one of 2 accounts, one of 10 transfers.
    expect(figure("scarab_commit_events_count")).toBe(2)
    expect(figure("scarab_commit_events_sum")).toBe(12)
    expect(figure("scarab_commit_events_bucket", 'cluster="0",replica="0",le="8"')).toBe(1)
    expect(figure("scarab_commit_events_bucket", 'cluster="0",replica="0",le="16"')).toBe(2)
    expect(figure("scarab_commit_latency_seconds_count")).toBeGreaterThanOrEqual(40)
    expect(figure("scarab_commit_latency_seconds_sum")).toBeGreaterThan(0)
    expect(figure("scarab_journal_write_seconds_count")).toBeGreaterThanOrEqual(40)
    expect(figure("scarab_checkpoint_duration_seconds_count")).toBeGreaterThanOrEqual(1)
    expect(figure("scarab_checkpoint_op")).toBeGreaterThanOrEqual(31)
    expect(figure("scarab_commit_op")).toBeGreaterThanOrEqual(40)
    expect(figure("scarab_client_sessions")).toBe(1)
    expect(figure("scarab_view")).toBe(0)
    expect(figure("scarab_view_changes_total")).toBe(0)
    expect(figure("scarab_client_messages_sent_total")).toBeGreaterThanOrEqual(40)

    const promtool = spawnSync("promtool", ["check", "metrics"], { input: text, encoding: "utf8", timeout: 20_000 })
    if (promtool.error === undefined) {
      expect(promtool.stdout + promtool.stderr).toBe("")
      expect(promtool.status).toBe(0)
    } else {
      console.warn(`promtool is not installed (${promtool.error.message}): the exposition format is checked by this test's own reading only`)
    }
    const missing = await fetch(url.replace("/metrics", "/nothing"))
    expect(missing.status).toBe(404)
  }, 60_000)
})

describe("scarab start --statsd: statsd datagrams over UDP", () => {
  it("sends the figures once a second, with DogStatsD tags, each datagram within the bound", async () => {
    socket = createSocket("udp4")
    const datagrams: Array<Buffer> = []
    socket.on("message", (datagram) => datagrams.push(datagram))
    const port = await new Promise<number>((resolve) => socket!.bind(0, "127.0.0.1", () => resolve(socket!.address().port)))
    await started([`--statsd=127.0.0.1:${port}`])
    await load(client!, 3)
    const lines = () => datagrams.flatMap((datagram) => datagram.toString("utf8").split("\n"))
    const deadline = Date.now() + 20_000
    const wanted = ["scarab.requests_received:", "scarab.commits:", "scarab.commit_latency_seconds.count:", "scarab.client_sessions:1|g"]
    while (!wanted.every((prefix) => lines().some((line) => line.startsWith(prefix))) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    const all = lines()
    for (const prefix of wanted) expect(all.some((line) => line.startsWith(prefix)), `${prefix} in\n${all.join("\n")}`).toBe(true)
    expect(datagrams.every((datagram) => datagram.length <= statsdDatagramBytesMax)).toBe(true)
    for (const line of all) expect(line).toMatch(/^scarab\.[a-z_.]+:-?[0-9.e+-]+\|[cg]\|#[a-z_]+:[^,|#]+(,[a-z_]+:[^,|#]+)*$/)
    // Counters go out as increases: what was sent for create_transfers adds up to the one commit.
    const commits = all.filter((line) => line.startsWith("scarab.commits:") && line.includes("operation:create_transfers"))
    expect(commits.reduce((sum, line) => sum + Number(/:(\d+)\|c/.exec(line)![1]), 0)).toBe(1)
    expect(all.find((line) => line.startsWith("scarab.requests_received:"))).toMatch(/\|c\|#(.*,)?cluster:0(,.*)?$/)
  }, 60_000)

  it("sends counters and histograms as increases since the last flush, gauges as values, nothing for what did not move", () => {
    const context = Context.make(Metric.MetricRegistry, new Map())
    const requests = Metric.counter("scarab_requests_total", { incremental: true, attributes: { replica: "0" } })
    const view = Metric.gauge("scarab_view")
    const latency = Metric.histogram("scarab_latency_seconds", { boundaries: [0.01, 0.1] })
    const lines = statsdLines()
    requests.updateUnsafe(3, context)
    view.updateUnsafe(7, context)
    latency.updateUnsafe(0.02, context)
    latency.updateUnsafe(0.04, context)
    expect(lines(Metric.snapshotUnsafe(context)).sort()).toEqual([
      "scarab.latency_seconds.count:2|c", "scarab.latency_seconds.mean:0.03|g", "scarab.latency_seconds.sum:0.06|c",
      "scarab.requests:3|c|#replica:0", "scarab.view:7|g"
    ])
    requests.updateUnsafe(2, context)
    expect(lines(Metric.snapshotUnsafe(context)).sort()).toEqual(["scarab.requests:2|c|#replica:0", "scarab.view:7|g"])
  })

  it("packs lines into datagrams of at most the bound, in order, none lost", () => {
    const lines = Array.from({ length: 500 }, (_, i) => `scarab.figure_${i}:${i}|c|#cluster:0,replica:0`)
    const datagrams = packDatagrams(lines, statsdDatagramBytesMax)
    expect(datagrams.length).toBeGreaterThan(1)
    expect(datagrams.every((datagram) => datagram.length <= statsdDatagramBytesMax)).toBe(true)
    expect(datagrams.flatMap((datagram) => datagram.toString().split("\n"))).toEqual(lines)
    expect(packDatagrams(["x".repeat(statsdDatagramBytesMax + 1)], statsdDatagramBytesMax)).toEqual([])
  })
})

async function scrape(url: string): Promise<string> {
  const response = await fetch(url)
  expect(response.status).toBe(200)
  expect(response.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8")
  return await response.text()
}

/**
 * A strict reading of the Prometheus text format 0.0.4: `# HELP` and `# TYPE` lines, then the
 * samples of that family alone (names of the family, `_bucket`/`_sum`/`_count` for histograms),
 * label sets well formed, histogram buckets cumulative up to `+Inf` = `_count`. Returns every
 * sample's value by `name{labels}`; throws at the first line that breaks a rule.
 */
function parseExposition(text: string): Map<string, number> {
  expect(text.endsWith("\n")).toBe(true)
  const samples = new Map<string, number>()
  const families = new Set<string>()
  let family: { name: string; type: string } | undefined
  let bucketLast = -1
  const label = String.raw`[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"`
  const sample = new RegExp(String.raw`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:${label}(?:,${label})*)?\})? (-?[0-9.e+]+|[+-]Inf|NaN)$`)
  for (const line of text.slice(0, -1).split("\n")) {
    const help = /^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) .+$/.exec(line)
    if (help !== null) continue
    const type = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line)
    if (type !== null) {
      if (families.has(type[1]!)) throw new Error(`family ${type[1]} declared twice`)
      families.add(type[1]!)
      family = { name: type[1]!, type: type[2]! }
      bucketLast = -1
      continue
    }
    const parsed = sample.exec(line)
    if (parsed === null) throw new Error(`not a sample line: ${JSON.stringify(line)}`)
    if (family === undefined) throw new Error(`a sample before any TYPE: ${line}`)
    const [, name, labels = "", value] = parsed
    const suffixes = family.type === "histogram" ? ["_bucket", "_sum", "_count"] : [""]
    if (!suffixes.some((suffix) => name === family!.name + suffix)) throw new Error(`${name} outside its family ${family.name}`)
    const number = value === "+Inf" ? Infinity : value === "-Inf" ? -Infinity : Number(value)
    if (Number.isNaN(number) && value !== "NaN") throw new Error(`bad value in ${line}`)
    if (name!.endsWith("_bucket")) {
      if (number < bucketLast) throw new Error(`buckets not cumulative at ${line}`)
      bucketLast = labels.includes('le="+Inf"') ? -1 : number
    }
    samples.set(name! + labels, number)
  }
  for (const [key, value] of samples) {
    const inf = /^(.*)_bucket\{(.*),le="\+Inf"\}$/.exec(key)
    if (inf !== null) expect(samples.get(`${inf[1]}_count{${inf[2]}}`)).toBe(value)
  }
  return samples
}
