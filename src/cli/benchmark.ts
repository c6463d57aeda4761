/**
 * `scarab benchmark`: what `tigerbeetle benchmark` does, against a real replica process.
 *
 * Question: how many transfers per second does a single Scarab replica (or a cluster) accept end
 * to end (TCP, framing, checksums, prepare, WAL write with O_DSYNC, commit, ledger, reply), and
 * how long does one full batch take?
 *
 * Workload (TigerBeetle's canonical one): a temporary data file (production profile), a replica
 * started as its own child process, 10,000 accounts, N transfers (default 2,000,000) between
 * random pairs of distinct accounts, amount 1, in requests of 8189; then queries
 * (get_account_transfers of a random account, lookup_accounts of 8189 random ids).
 *
 * Measured path: the load generator below is its own tiny client speaking the wire protocol
 * (wire-protocol.md §9): register, then one request in flight at a time, each chained to the
 * previous reply (`parent` = its `context`). Batches are built directly in wire format while the
 * previous request is in flight, so only the header checksum is on the measured path (on two
 * cores the building still competes with the replica for CPU); `tigerbeetle-node` would spend
 * ~4.5 µs per transfer serialising.
 * A batch's latency runs from writing its request to reading its whole reply.
 *
 * A cluster (`--replica-count=N`, 1..6): N data files and N replica processes on this host. The
 * load and the probe go to the primary they elect (named in their logs, once all are normal in
 * one view), which commits a batch once a replication quorum has written it: the path adds
 * the prepare's trip to the backups and their prepare_oks, and the backups' CPU shares the two
 * cores. Each replica's RSS is reported. With `--addresses=A0,A1,…` (and `--cluster`, default 0)
 * the benchmark loads a cluster already running, as `tigerbeetle benchmark --addresses` does: it
 * starts nothing, measures no RSS, and gives every id fresh top 32 bits, so that a rerun creates
 * new accounts and transfers.
 *
 * Then durability, for a replica of one of its own only (a second, fresh replica): transfers are loaded up to each restart point
 * (default 1M, 5M and 10M); at each, cheap one-id lookups fill the WAL up to the next checkpoint
 * op, so that the checkpoint holds exactly the transfers loaded so far, and the replica is
 * killed (SIGKILL) and restarted. Reported: each checkpoint's duration (from the replica's log),
 * the restart time (spawn to serving: open the superblock, load the checkpoint, recover the WAL,
 * replay the ops after the checkpoint, with the replica's own breakdown), and the data file's
 * allocated bytes per transfer at the last point.
 *
 * Throughout the load and the durability phase (so through its checkpoints) a probe pings the
 * replica every 10 ms on a connection of its own (src/cli/pinger.ts): `ping_latency_max_ms` is
 * the slowest answer, the longest the replica's loop was busy elsewhere.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs"
import { connect, type Socket } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { performance } from "node:perf_hooks"
import { assert } from "../assert.ts"
import { buildMessage, setChecksum, u128FromBytes } from "../protocol/build.ts"
import { Command, FrameLayout, headerSize, releaseScarab, replicasMax, ReplyLayout, RequestLayout, VsrOperation, zeroHeader } from "../protocol/header.ts"
import { encodeMultiBatch } from "../protocol/multi_batch.ts"
import { batchEventsMax, Operation, type ClientOperation, eventSize } from "../protocol/operation.ts"
import { accountFilter, AccountFilterFlags, encodeAccountFilter } from "../protocol/records.ts"
import { registerRequestBody, registerResultBatchSizeLimit } from "../protocol/register.ts"
import { productionConfig } from "../storage/layout.ts"
import { type Parsed, parseAddress, parseU128, parseUint, UsageError } from "./arguments.ts"
import { Pinger } from "./pinger.ts"
import { clusterPrimary, formatDataFile, type ReplicaProcess, startCluster, startReplica, stopReplica } from "./replica_child.ts"
import { accountBatch, type IdOrder, idPermutation, transferBatch, xorshift } from "./workload.ts"

export interface BenchmarkOptions {
  readonly transfers: number
  readonly accounts: number
  readonly queries: number
  /** The order of the transfers' ids (TigerBeetle's --id-order). */
  readonly idOrder: IdOrder
  /** Every transfer is created pending (TigerBeetle's --transfer-pending). */
  readonly transferPending: boolean
  /** Seeds the account pairs, the random id order and the queries. */
  readonly seed: number
  /** Transfer counts at which the durability phase checkpoints and restarts; empty: no such phase. */
  readonly restartPoints: ReadonlyArray<number>
  /** When set, the replicas run with `--cpu-prof` and write their profiles into this directory. */
  readonly cpuProfileDirectory: string | undefined
  /** Replicas the benchmark formats and starts on this host, or the size of the cluster at `addresses`. */
  readonly replicaCount: number
  /** A running cluster's addresses, by replica index: the benchmark starts nothing and loads it. */
  readonly addresses: ReadonlyArray<Address> | undefined
  /** The cluster at `addresses` (0 for the one the benchmark starts). */
  readonly cluster: bigint
}

interface Address {
  readonly host: string
  readonly port: number
}

/** The production profile's checkpoint interval: checkpoints at ops 959, 1919, … */
const checkpointOps = productionConfig.checkpointOps
const replyTimeoutMs = 60_000
/**
 * A request with no reply yet is sent again this often, as the official client retries: a cluster's
 * primary drops requests until its clocks agree (about 2 s after start, vsr.md §8), and a retry
 * of a request in flight changes nothing.
 */
const resendMs = 1_000
const percentiles = [1, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 99, 100] as const

export function benchmarkOptions(parsed: Parsed): BenchmarkOptions {
  parsed.allowOnly(["transfer-count", "transfers", "account-count", "accounts", "query-count", "queries", "id-order", "transfer-pending", "seed",
    "clients", "restart-points", "replica-cpu-prof", "replica-count", "addresses", "cluster"])
  if (parsed.positional.length > 0) throw new UsageError("benchmark takes no data file: it formats a temporary one")
  const transfers = parseUint(aliased(parsed, "transfer-count", "transfers") ?? "2000000", "--transfer-count", 1, 100_000_000)
  const accounts = parseUint(aliased(parsed, "account-count", "accounts") ?? "10000", "--account-count", 2, 1_000_000)
  const queries = parseUint(aliased(parsed, "query-count", "queries") ?? "100", "--query-count", 1, 10_000)
  const idOrder = parsed.flags.get("id-order") ?? "sequential"
  if (idOrder !== "sequential" && idOrder !== "random" && idOrder !== "reversed") {
    throw new UsageError(`--id-order must be sequential, random or reversed, not '${idOrder}'`)
  }
  const seed = parseUint(parsed.flags.get("seed") ?? "42", "--seed", 0, 0xffff_ffff)
  const clients = parsed.flags.get("clients")
  if (clients !== undefined && clients !== "1") {
    throw new UsageError(`--clients=${clients}: Scarab's load generator is one client with one request in flight; only --clients=1 is supported`)
  }
  const transferPending = parsed.switchGiven("transfer-pending")
  const listed = parsed.flags.get("addresses")
  const addresses = listed === undefined ? undefined : parsed.required("addresses").split(",").map((address) => parseAddress(address))
  const count = parsed.flags.get("replica-count")
  const replicaCount = count === undefined ? addresses?.length ?? 1 : parseUint(count, "--replica-count", 1, replicasMax)
  if (addresses !== undefined && addresses.length !== replicaCount) {
    throw new UsageError(`--addresses names ${addresses.length} replicas but --replica-count is ${replicaCount}`)
  }
  if (addresses !== undefined && addresses.length > replicasMax) throw new UsageError(`--addresses names ${addresses.length} replicas; a cluster has at most ${replicasMax}`)
  if (addresses === undefined && parsed.flags.has("cluster")) throw new UsageError("--cluster names the cluster at --addresses; the benchmark's own cluster is 0")
  const cluster = addresses === undefined ? 0n : parseU128(parsed.flags.get("cluster") ?? "0", "--cluster")
  // The durability phase kills and restarts the replica it started: one replica of its own.
  const ownReplica = addresses === undefined && replicaCount === 1
  if (!ownReplica && parsed.flags.has("restart-points")) throw new UsageError("--restart-points restarts a single replica the benchmark starts itself")
  const points = parsed.flags.get("restart-points") ?? (ownReplica ? "1000000,5000000,10000000" : "none")
  const restartPoints = points === "none" ? [] : points.split(",").map((point) => parseUint(point, "--restart-points", 1, 100_000_000))
  for (let i = 1; i < restartPoints.length; i++) {
    if (restartPoints[i]! <= restartPoints[i - 1]!) throw new UsageError("--restart-points must increase")
  }
  const profile = parsed.flags.get("replica-cpu-prof")
  if (addresses !== undefined && profile !== undefined) throw new UsageError("--replica-cpu-prof profiles replicas the benchmark starts, not those at --addresses")
  return {
    transfers, accounts, queries, idOrder, transferPending, seed, restartPoints,
    cpuProfileDirectory: profile === undefined || profile === "" ? undefined : profile, replicaCount, addresses, cluster
  }
}

/** A value given under TigerBeetle's name or Scarab's earlier one (not both). */
function aliased(parsed: Parsed, name: string, earlier: string): string | undefined {
  if (parsed.flags.has(name) && parsed.flags.has(earlier)) throw new UsageError(`--${name} and --${earlier} are the same option; give one`)
  return parsed.flags.has(name) ? parsed.required(name) : parsed.flags.has(earlier) ? parsed.required(earlier) : undefined
}

/** What the benchmark holds open, released whatever happens. */
interface Held {
  /** The replicas it started, by index (none for a cluster at --addresses). */
  replicas: Array<ReplicaProcess>
  connection: LoadClient | undefined
  /** Pings every 10 ms through the load and the checkpoints (src/cli/pinger.ts). */
  pinger: Pinger | undefined
}

/** Runs the benchmark; the replicas it started are killed and their data files deleted whatever happens. */
export async function benchmark(options: BenchmarkOptions): Promise<void> {
  const directory = mkdtempSync(join(tmpdir(), "scarab-benchmark-"))
  const held: Held = { replicas: [], connection: undefined, pinger: undefined }
  const pings: Array<PingFigures> = []
  const interrupt = () => { void cleanup().then(() => process.exit(130)) }
  const cleanup = async () => {
    held.pinger?.stop()
    held.connection?.close()
    for (const replica of held.replicas) await stopReplica(replica)
    held.replicas = []
    rmSync(directory, { recursive: true, force: true })
  }
  process.once("SIGINT", interrupt)
  process.once("SIGTERM", interrupt)
  try {
    log(`benchmark: ${options.accounts} accounts, ${options.transfers} transfers in batches of ${batchEventsMax}, ${options.queries} queries, ` +
      `${options.idOrder} ids${options.transferPending ? ", pending" : ""}, seed ${options.seed}, ${options.replicaCount} replica${options.replicaCount === 1 ? "" : "s"}`)
    // The load goes to the primary: of a cluster it starts, the one its replicas elected; of a
    // running cluster, the first address (name the primary's first).
    const primary = options.addresses?.[0] ?? { host: localhost, port: await startOwnCluster(directory, options, held) }
    // Ids of a fresh range for a cluster that may hold an earlier run's: the top 32 bits of every id.
    const idHigh = options.addresses === undefined ? 0 : 1 + Math.floor(Math.random() * 0xffff_fffe)
    const connection = held.connection = await LoadClient.connect(primary, options.cluster)
    await connection.register()
    await createAccounts(connection, options.accounts, idHigh)
    held.pinger = await Pinger.start(primary, options.cluster, randomClientId())
    const load = await createTransfers(connection, options, 0, options.transfers, idHigh)
    const queries = await runQueries(connection, options, idHigh)
    const rss = held.replicas.map((replica) => residentBytes(replica.child.pid!))
    pings.push(held.pinger.stop())
    held.pinger = undefined
    connection.close()
    held.connection = undefined
    for (const replica of held.replicas) await stopReplica(replica)
    held.replicas = []
    rmSync(directory, { recursive: true, force: true })
    mkdirSync(directory)
    const restarts = options.restartPoints.length > 0 ? await durability(options, join(directory, "0_0.scarab"), held, pings) : []
    report(options, load, queries, rss, restarts, pings)
  } finally {
    process.off("SIGINT", interrupt)
    process.off("SIGTERM", interrupt)
    await cleanup()
    if (options.cpuProfileDirectory !== undefined) log(`replica CPU profiles written to ${options.cpuProfileDirectory}`)
  }
}

/** Formats `options.replicaCount` data files in `directory`, starts a replica process on each, and returns the port of the primary they elect. */
async function startOwnCluster(directory: string, options: BenchmarkOptions, held: Held): Promise<number> {
  assert(options.addresses === undefined, () => "a cluster at --addresses is not started")
  const paths = Array.from({ length: options.replicaCount }, (_, replica) => join(directory, `0_${replica}.scarab`))
  paths.forEach((path, replica) => formatDataFile(path, "production", replica, options.replicaCount))
  held.replicas = await startCluster(paths, options.cpuProfileDirectory)
  assert(held.replicas.length === options.replicaCount, () => "every replica started")
  for (const [i, replica] of held.replicas.entries()) log(`replica ${i} started: pid ${replica.child.pid}, port ${replica.port}, data file ${paths[i]}`)
  const primary = await clusterPrimary(held.replicas)
  if (options.replicaCount > 1) log(`replica ${primary} is the primary`)
  return held.replicas[primary]!.port
}

/**
 * The durability phase, on a fresh replica of one: load up to each restart point, fill the WAL
 * to the next checkpoint, SIGKILL and restart; the figures of each.
 */
async function durability(options: BenchmarkOptions, path: string, held: Held, pings: Array<PingFigures>): Promise<Array<RestartResult>> {
  assert(options.replicaCount === 1 && options.addresses === undefined, () => "the durability phase restarts a replica of its own")
  formatDataFile(path)
  let replica = await startReplica(path)
  held.replicas = [replica]
  let connection = held.connection = await LoadClient.connect({ host: localhost, port: replica.port }, 0n)
  await connection.register()
  await createAccounts(connection, options.accounts, 0)
  const restarts: Array<RestartResult> = []
  let loaded = 0
  for (const point of options.restartPoints) {
    held.pinger = await Pinger.start({ host: localhost, port: replica.port }, 0n, randomClientId())
    await createTransfers(connection, options, loaded, point, 0)
    loaded = point
    const checkpoint = await fillToCheckpoint(connection, replica)
    pings.push(held.pinger.stop())
    held.pinger = undefined
    connection.close()
    const restart = await restartReplica(replica, path)
    replica = restart.replica
    held.replicas = [replica]
    restarts.push({ transfers: point, checkpoint, restartMs: restart.ms, breakdown: restart.breakdown, fileBytes: allocatedBytes(path) })
    connection = held.connection = await LoadClient.connect({ host: localhost, port: replica.port }, 0n)
    await connection.register()
  }
  assert(restarts.length === options.restartPoints.length, () => "one restart per point")
  return restarts
}

const localhost = "127.0.0.1"

type PingFigures = { readonly slowestMs: number; readonly answered: number }

// --- phases ----------------------------------------------------------------------------------

async function createAccounts(client: LoadClient, count: number, idHigh: number): Promise<void> {
  for (let first = 0; first < count; first += batchEventsMax) {
    const n = Math.min(batchEventsMax, count - first)
    const reply = await client.request(client.prepare(Operation.create_accounts, accountBatch(first + 1, n, idHigh)))
    assertAllCreated(reply, n, "create_accounts")
  }
}

interface LoadResult {
  readonly seconds: number
  readonly latenciesMs: Float64Array
}

/** Creates transfers `from + 1 .. to` (ids), in full batches. */
async function createTransfers(client: LoadClient, options: BenchmarkOptions, from: number, to: number, idHigh: number): Promise<LoadResult> {
  const random = xorshift(options.seed + from)
  const count = to - from
  const batchCount = Math.ceil(count / batchEventsMax)
  const latenciesMs = new Float64Array(batchCount)
  // Transfer n (from 1) of every phase, load and durability: one permutation over all the ids either creates.
  const idOf = idPermutation(options.idOrder, Math.max(options.transfers, ...options.restartPoints), options.seed)
  const build = (batch: number): Uint8Array => {
    const n = Math.min(batchEventsMax, count - batch * batchEventsMax)
    const events = transferBatch(random, options.accounts, from + batch * batchEventsMax + 1, n, idHigh, { idOf, pending: options.transferPending })
    return client.prepare(Operation.create_transfers, events)
  }
  const progress = new Progress(count)
  const start = performance.now()
  let next = build(0)
  for (let batch = 0; batch < batchCount; batch++) {
    const n = Math.min(batchEventsMax, count - batch * batchEventsMax)
    const sent = performance.now()
    const pending = client.request(next)
    // The next batch is built while this one is in flight.
    if (batch + 1 < batchCount) next = build(batch + 1)
    const reply = await pending
    latenciesMs[batch] = performance.now() - sent
    assertAllCreated(reply, n, `create_transfers batch ${batch}`)
    progress.update(batch * batchEventsMax + n, performance.now() - start)
  }
  const seconds = (performance.now() - start) / 1000
  progress.done()
  return { seconds, latenciesMs }
}

interface QueryResult {
  readonly accountTransfersMs: Float64Array
  readonly lookupAccountsMs: Float64Array
  readonly transfersFound: number
}

async function runQueries(client: LoadClient, options: BenchmarkOptions, idHigh: number): Promise<QueryResult> {
  const random = xorshift(options.seed ^ 0x5bd1_e995)
  const accountTransfersMs = new Float64Array(options.queries)
  const lookupAccountsMs = new Float64Array(options.queries)
  let transfersFound = 0
  for (let q = 0; q < options.queries; q++) {
    const filter = encodeAccountFilter(accountFilter({
      account_id: (BigInt(idHigh) << 96n) | BigInt(1 + Math.floor(random() * options.accounts)), limit: batchEventsMax,
      flags: AccountFilterFlags.debits | AccountFilterFlags.credits
    }))
    const message = client.prepare(Operation.get_account_transfers, filter)
    const sent = performance.now()
    const reply = await client.request(message)
    accountTransfersMs[q] = performance.now() - sent
    transfersFound += (reply.length - headerSize) >> 7 // rows of 128 bytes; the trailer is one row at most
  }
  for (let q = 0; q < options.queries; q++) {
    const ids = new Uint8Array(batchEventsMax * 16)
    const words = new Uint32Array(ids.buffer)
    for (let i = 0; i < batchEventsMax; i++) {
      words[i * 4] = 1 + Math.floor(random() * options.accounts)
      words[i * 4 + 3] = idHigh
    }
    const message = client.prepare(Operation.lookup_accounts, ids)
    const sent = performance.now()
    const reply = await client.request(message)
    lookupAccountsMs[q] = performance.now() - sent
    assert(reply.length - headerSize >= batchEventsMax * 128, () => "lookup_accounts must find every account")
  }
  return { accountTransfersMs, lookupAccountsMs, transfersFound }
}

interface RestartResult {
  readonly transfers: number
  readonly checkpoint: CheckpointFigures
  readonly restartMs: number
  /** The replica's own account of its open (the log line after "replayed"). */
  readonly breakdown: string
  readonly fileBytes: number
}

interface CheckpointFigures {
  readonly op: number
  readonly ms: number
  readonly blocksWritten: number
  readonly blocksReused: number
}

/**
 * Sends one-id lookups until the replica commits the next checkpoint op, then waits for it to
 * log that the checkpoint is stored: that checkpoint holds every transfer loaded so far.
 */
async function fillToCheckpoint(client: LoadClient, replica: ReplicaProcess): Promise<CheckpointFigures> {
  const id = new Uint8Array(16)
  id[0] = 1
  let op = client.lastOp
  const target = (Math.floor((op + 1) / checkpointOps) + 1) * checkpointOps - 1
  while (op < target) {
    await client.request(client.prepare(Operation.lookup_accounts, id))
    op = client.lastOp
  }
  assert(op === target, () => `the fill went past the checkpoint op ${target} to ${op}`)
  const line = await replica.waitFor(new RegExp(`checkpoint op=${target} id=[0-9a-f]{32} \\((\\d+) ms, (\\d+) blocks written, (\\d+) carried over`))
  return { op: target, ms: Number(line[1]), blocksWritten: Number(line[2]), blocksReused: Number(line[3]) }
}

/** SIGKILL, then a new replica process on the same file (on a port of its own): the time until it serves. */
async function restartReplica(replica: ReplicaProcess, path: string) {
  replica.child.kill("SIGKILL")
  await replica.exited
  const started = performance.now()
  const restarted = await startReplica(path)
  const ms = performance.now() - started
  const breakdown = /replayed \d+ ops from the journal \(([^)]*)\)/.exec(restarted.log())
  return { replica: restarted, ms, breakdown: breakdown === null ? "" : breakdown[0] }
}

/** `rssBytes`: each started replica's, by index (none for a cluster at --addresses). */
function report(
  options: BenchmarkOptions, load: LoadResult, queries: QueryResult, rssBytes: ReadonlyArray<number>, restarts: ReadonlyArray<RestartResult>,
  pings: ReadonlyArray<PingFigures>
): void {
  const tps = Math.round(options.transfers / load.seconds)
  const batch = quantiles(load.latenciesMs)
  const query = quantiles(queries.accountTransfersMs)
  const lookup = quantiles(queries.lookupAccountsMs)
  console.log(`load accepted = ${tps} tx/s (${options.transfers} transfers in ${load.seconds.toFixed(2)} s)`)
  for (const p of percentiles) console.log(`batch latency p${p} = ${batch.get(p)!.toFixed(1)} ms`)
  for (const p of percentiles) console.log(`query latency (get_account_transfers) p${p} = ${query.get(p)!.toFixed(2)} ms`)
  for (const p of percentiles) console.log(`query latency (lookup_accounts, ${batchEventsMax} ids) p${p} = ${lookup.get(p)!.toFixed(2)} ms`)
  console.log(`get_account_transfers found ${(queries.transfersFound / options.queries).toFixed(0)} transfers per account on average`)
  const mib = (bytes: number) => `${(bytes / (1024 * 1024)).toFixed(0)} MiB`
  if (options.addresses === undefined && options.replicaCount === 1) console.log(`replica rss = ${mib(rssBytes[0]!)}`)
  else if (options.addresses === undefined) rssBytes.forEach((bytes, replica) => console.log(`replica ${replica} rss = ${mib(bytes)}`))
  else console.log("replica rss: not measured (the replicas at --addresses are not this benchmark's processes)")
  const pingLatencyMaxMs = Math.max(...pings.map((probe) => probe.slowestMs))
  console.log(`ping latency max = ${pingLatencyMaxMs.toFixed(1)} ms (${pings.reduce((sum, probe) => sum + probe.answered, 0)} pings every 10 ms, ` +
    `through the load${restarts.length > 0 ? " and the checkpoints" : ""})`)
  const durability: Record<string, number> = {}
  for (const r of restarts) {
    const millions = r.transfers % 1_000_000 === 0 ? `${r.transfers / 1_000_000}m` : String(r.transfers)
    console.log(`${r.transfers} transfers: checkpoint at op ${r.checkpoint.op} = ${r.checkpoint.ms} ms (${r.checkpoint.blocksWritten} blocks written, ` +
      `${r.checkpoint.blocksReused} carried over); restart = ${r.restartMs.toFixed(0)} ms, ${r.breakdown}; data file ${(r.fileBytes / 2 ** 30).toFixed(2)} GiB allocated`)
    durability[`checkpoint_ms_${millions}`] = r.checkpoint.ms
    durability[`restart_ms_${millions}`] = Math.round(r.restartMs)
  }
  const last = restarts.at(-1)
  if (last !== undefined) durability.data_file_bytes_per_transfer = Math.round(last.fileBytes / last.transfers)
  console.log(`RESULT ${JSON.stringify({
    transfers: options.transfers,
    accounts: options.accounts,
    batch_size: batchEventsMax,
    load_accepted_tps: tps,
    load_seconds: Number(load.seconds.toFixed(3)),
    batch_latency_p1_ms: round(batch.get(1)!),
    batch_latency_p50_ms: round(batch.get(50)!),
    batch_latency_p99_ms: round(batch.get(99)!),
    batch_latency_p100_ms: round(batch.get(100)!),
    query_latency_p50_ms: round(query.get(50)!),
    query_latency_p99_ms: round(query.get(99)!),
    lookup_latency_p50_ms: round(lookup.get(50)!),
    lookup_latency_p99_ms: round(lookup.get(99)!),
    rss_bytes: rssBytes[0] ?? null,
    replica_count: options.replicaCount,
    ...(rssBytes.length > 1 ? { replica_rss_bytes: rssBytes } : {}),
    ping_latency_max_ms: round(pingLatencyMaxMs),
    ...durability
  })}`)
}

// --- the load generator's client --------------------------------------------------------------

/**
 * A minimal client session over one TCP connection (wire-protocol.md §9): register, then one
 * request at a time, each chained to the previous reply. Replies are checked against their
 * request (`request_checksum`, `request` number, `client`) before they are believed.
 */
class LoadClient {
  private readonly client = randomClientId()
  private session = 0n
  private number = 0
  private readonly parent = new Uint8Array(16)
  private buffered: Array<Buffer> = []
  private bufferedBytes = 0
  private waiting: { resolve: (reply: Buffer) => void; reject: (error: Error) => void } | undefined
  private failure: Error | undefined
  /** The op of the latest reply. */
  lastOp = 0

  private readonly socket: Socket
  private readonly cluster: bigint

  private constructor(socket: Socket, cluster: bigint) {
    this.socket = socket
    this.cluster = cluster
    socket.setNoDelay(true)
    socket.on("data", (chunk: Buffer) => this.onData(chunk))
    socket.on("error", (error) => this.fail(error))
    socket.on("close", () => this.fail(new Error("the replica closed the connection (as it does to messages of another cluster than its own)")))
  }

  static connect(address: Address, cluster: bigint): Promise<LoadClient> {
    return new Promise((resolve, reject) => {
      const socket = connect(address.port, address.host, () => { socket.off("error", reject); resolve(new LoadClient(socket, cluster)) })
      socket.once("error", reject)
    })
  }

  async register(): Promise<void> {
    assert(this.session === 0n, () => "register once")
    const header = zeroHeader(Command.request)
    header.release = releaseScarab
    header.client = this.client
    header.cluster = this.cluster
    header.operation = VsrOperation.register
    const reply = await this.request(buildMessage(header, registerRequestBody()))
    assert(registerResultBatchSizeLimit(reply.subarray(headerSize)) !== undefined, () => "register reply without a batch_size_limit")
    this.session = reply.readBigUInt64LE(ReplyLayout.commit.offset)
    assert(this.session > 0n, () => "a session number is never 0")
  }

  /**
   * A request for the next number with `events` as its only batch and both checksums; `parent`
   * is filled in (and the header checksum recomputed) by `request` once the previous reply is in.
   */
  prepare(operation: ClientOperation, events: Uint8Array): Uint8Array {
    assert(events.length % eventSize(operation) === 0, () => "events of the wrong size")
    const header = zeroHeader(Command.request)
    header.release = releaseScarab
    header.client = this.client
    header.cluster = this.cluster
    header.operation = operation
    header.session = 1n // placeholder, set with `request`
    header.request = 1
    return buildMessage(header, encodeMultiBatch([events], eventSize(operation)))
  }

  /** Sends `message` as the next request and resolves with its reply. One in flight at a time. */
  request(message: Uint8Array): Promise<Buffer> {
    assert(this.waiting === undefined, () => "one request in flight at a time")
    if (this.failure !== undefined) return Promise.reject(this.failure)
    const view = new DataView(message.buffer, message.byteOffset, headerSize)
    if (message[RequestLayout.operation.offset] !== VsrOperation.register) {
      this.number++
      view.setBigUint64(RequestLayout.session.offset, this.session, true)
      view.setUint32(RequestLayout.request.offset, this.number, true)
      message.set(this.parent, RequestLayout.parent.offset)
      setChecksum(message)
    }
    const checksum = message.slice(FrameLayout.checksum.offset, FrameLayout.checksum.offset + 16)
    const number = this.number
    return new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(() => this.fail(new Error(`no reply to request ${number} in ${replyTimeoutMs} ms`)), replyTimeoutMs)
      const resend = setInterval(() => this.socket.write(message), resendMs)
      this.waiting = {
        reject: (error) => { clearTimeout(timer); clearInterval(resend); reject(error) },
        resolve: (reply) => {
          clearTimeout(timer)
          clearInterval(resend)
          if (reply[FrameLayout.command.offset] === Command.eviction) return reject(new Error(`evicted (reason ${reply[255]})`))
          if (reply[FrameLayout.command.offset] !== Command.reply) return reject(new Error(`unexpected command ${reply[FrameLayout.command.offset]}`))
          if (Buffer.compare(reply.subarray(ReplyLayout.request_checksum.offset, ReplyLayout.request_checksum.offset + 16), checksum) !== 0 ||
            reply.readUInt32LE(ReplyLayout.request.offset) !== number || u128FromBytes(reply, ReplyLayout.client.offset) !== this.client) {
            return reject(new Error(`reply does not answer request ${number}`))
          }
          this.parent.set(reply.subarray(ReplyLayout.context.offset, ReplyLayout.context.offset + 16))
          this.lastOp = Number(reply.readBigUInt64LE(ReplyLayout.op.offset))
          resolve(reply)
        }
      }
      this.socket.write(message)
    })
  }

  close(): void {
    this.socket.destroy()
  }

  private onData(chunk: Buffer): void {
    this.buffered.push(chunk)
    this.bufferedBytes += chunk.length
    while (this.bufferedBytes >= headerSize) {
      if (this.buffered.length > 1) this.buffered = [Buffer.concat(this.buffered, this.bufferedBytes)]
      const head = this.buffered[0]!
      const size = head.readUInt32LE(FrameLayout.size.offset)
      if (size < headerSize) return this.fail(new Error(`a message of size ${size}`))
      if (head.length < size) return
      const message = head.subarray(0, size)
      const rest = head.subarray(size)
      this.buffered = rest.length > 0 ? [rest] : []
      this.bufferedBytes = rest.length
      // Pongs never come (the generator sends no pings); anything else answers the request in flight.
      const waiting = this.waiting
      this.waiting = undefined
      if (waiting === undefined) return this.fail(new Error(`unsolicited message, command ${message[FrameLayout.command.offset]}`))
      waiting.resolve(message)
    }
  }

  private fail(error: Error): void {
    if (this.failure !== undefined) return
    this.failure = error
    const waiting = this.waiting
    this.waiting = undefined
    waiting?.reject(error)
  }
}

// --- the replica process ----------------------------------------------------------------------

/** Bytes the file occupies on disk (sparse zones not counted). */
function allocatedBytes(path: string): number {
  return statSync(path).blocks * 512
}

function residentBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8")
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(status)
  assert(match !== null, () => "VmRSS missing from /proc/<pid>/status")
  return Number(match[1]) * 1024
}

// --- helpers ----------------------------------------------------------------------------------

/** Every result of a create reply says `created` (status u32 at byte 8 of each 16-byte result). */
function assertAllCreated(reply: Buffer, events: number, what: string): void {
  for (let i = 0; i < events; i++) {
    const status = reply.readUInt32LE(headerSize + i * 16 + 8)
    if (status !== 0xffff_ffff) throw new Error(`${what}: event ${i} failed with status ${status}`)
  }
}

/** Nearest-rank percentiles. */
function quantiles(values: Float64Array): Map<number, number> {
  const sorted = Float64Array.from(values).sort()
  const result = new Map<number, number>()
  for (const p of percentiles) result.set(p, sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!)
  return result
}

const round = (value: number): number => Math.round(value * 100) / 100

function randomClientId(): bigint {
  const bytes = crypto.getRandomValues(new Uint8Array(16))
  bytes[0] |= 1 // never 0
  return u128FromBytes(bytes, 0)
}

const log = (line: string): void => { process.stderr.write(`${line}\n`) }

/** One progress line, rewritten in place on a terminal, every few seconds otherwise. */
class Progress {
  private shownAt = 0
  private readonly total: number

  constructor(total: number) {
    this.total = total
  }

  update(done: number, elapsedMs: number): void {
    const interval = process.stderr.isTTY ? 250 : 2000
    if (elapsedMs - this.shownAt < interval && done < this.total) return
    this.shownAt = elapsedMs
    const line = `transfers ${done.toLocaleString("en")} / ${this.total.toLocaleString("en")} (${Math.round(done / (elapsedMs / 1000)).toLocaleString("en")} tx/s)`
    process.stderr.write(process.stderr.isTTY ? `\r${line}` : `${line}\n`)
  }

  done(): void {
    if (process.stderr.isTTY) process.stderr.write("\n")
  }
}
