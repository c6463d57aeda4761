/**
 * What the `scarab` commands that run do: format a data file, start a replica on it, the REPL,
 * the benchmark. main.ts parses the arguments and imports this module only when one of these
 * commands runs, so that help, version and usage errors start without loading Effect, the
 * replica and the storage layers (a fifth of the time, on an idle machine).
 */
import { existsSync, readFileSync } from "node:fs"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Cause, Context, Effect, Exit, Layer, Logger, type LogLevel, References } from "effect"
import { LedgerCapacity, layerReplica, Replica, ReplicaOpenError } from "../actors/replica.ts"
import type { LedgerOptions } from "../ledger/ledger.ts"
import { formatDataFile, layerStorageFile } from "../layers/disk.ts"
import { layerMessageBusTcp, type ReplicaAddress } from "../layers/network_tcp.ts"
import type { FormatOptions } from "../storage/format.ts"
import { layoutOf, storageConfigs } from "../storage/layout.ts"
import { Storage, StorageOpenError } from "../storage/storage.ts"
import { peekSuperblock, replicaIndexOf } from "../storage/superblock.ts"
import { formatAddressText, type Parsed } from "./arguments.ts"
import { benchmark, benchmarkOptions } from "./benchmark.ts"
import { repl, replOptions } from "./repl.ts"

export const runFormat = (options: FormatOptions): void => NodeRuntime.runMain(reportFailure(format(options)))

/**
 * SIGTERM or SIGINT stops a replica cleanly, the way an operator or a supervisor stops it: the
 * main fiber is interrupted, the replica logs that it stops, its port and data file close as
 * their scopes end, and the process exits 0. (Every acknowledged op is durable already: the
 * journal is written with O_DSYNC before a reply goes out.)
 */
export const runStart = (options: StartOptions): void =>
  NodeRuntime.runMain(exitWhenStopped(reportFailure(start(options))).pipe(withLogging(options)), {
    teardown: (exit, onExit) => onExit(Exit.isSuccess(exit) || Cause.hasInterruptsOnly(exit.cause) ? 0 : 1)
  })

/** Parses the REPL's options (a mistake throws a UsageError), then runs it. */
export const runRepl = (parsed: Parsed): void => NodeRuntime.runMain(reportFailure(repl(replOptions(parsed))))

/** Parses the benchmark's options (a mistake throws a UsageError), then runs it. */
export function runBenchmark(parsed: Parsed): void {
  void benchmark(benchmarkOptions(parsed)).catch((error: unknown) => {
    console.error(`scarab: benchmark failed: ${error instanceof Error ? error.message : String(error)}`)
    process.exitCode = 1
  })
}

/** An expected failure (missing file, address in use, …) is one line on stderr and exit code 1. */
const reportFailure = <A, E extends { readonly message: string }>(effect: Effect.Effect<A, E>) =>
  effect.pipe(Effect.catch((error: E) => Effect.sync(() => {
    console.error(`scarab: ${error.message}`)
    process.exitCode = 1
  })))

/**
 * A replica that stopped for good (a broken invariant, a disk error it cannot handle) must not
 * leave a live port behind it: one line on stderr, then exit code 1 at once. The journal is
 * written with O_DSYNC, so nothing acknowledged waits on a flush.
 */
const exitWhenStopped = <A>(effect: Effect.Effect<A>) =>
  effect.pipe(Effect.catchCause((cause) => Cause.hasInterruptsOnly(cause) ? Effect.failCause(cause) : Effect.sync(() => {
    const error = Cause.squash(cause)
    console.error(`scarab: the replica stopped: ${error instanceof Error ? error.message : String(error)}`)
    process.exit(1)
  })))

/** Creates the file (never over an existing one), writes the journal's root, then the superblock. */
const format = (options: FormatOptions) =>
  formatDataFile(options).pipe(Effect.tap(() => Effect.logInfo(
    `${options.path}: formatted replica ${options.replica} of cluster ${options.cluster} (${options.profile} profile, ` +
      `${layoutOf(storageConfigs[options.profile]).dataFileSizeMin} bytes)`)))

export interface StartOptions {
  readonly path: string
  /** Every replica's address, by index: the data file's own replica listens on its entry and dials the ones above it. */
  readonly addresses: ReadonlyArray<ReplicaAddress>
  readonly formatCluster: bigint | undefined
  readonly capacity: LedgerOptions
  /** `--metrics`: the replica's figures in Prometheus text at `GET /metrics` on this address (port 0: one the kernel picks). */
  readonly metrics?: ReplicaAddress | undefined
  /** `--statsd`: the replica's figures as statsd datagrams to this address, once a second. */
  readonly statsd?: ReplicaAddress | undefined
  /** The least severe log lines printed. */
  readonly logLevel: "debug" | "info" | "warn" | "error"
  /** "text": Effect's default lines; "json": one JSON object per line (timestamp, level, message, annotations). */
  readonly logFormat: "text" | "json"
  /** `--development`, as TigerBeetle's: where Direct I/O is unavailable, the page cache with O_DSYNC, with a warning. */
  readonly development: boolean
  /** `--cache-grid` as given, and in bytes: TigerBeetle's grid cache size; accepted, and logged as not applied (docs/decisions.md). */
  readonly cacheGrid: { readonly text: string; readonly bytes: number } | undefined
}

const logLevels: Readonly<Record<StartOptions["logLevel"], LogLevel.LogLevel>> = { debug: "Debug", info: "Info", warn: "Warn", error: "Error" }

/** `--log-level` and `--log-format` for everything the replica logs, format and start-up included. */
const withLogging = (options: Pick<StartOptions, "logLevel" | "logFormat">) => <A, E>(effect: Effect.Effect<A, E>) => {
  const leveled = effect.pipe(Effect.provideService(References.MinimumLogLevel, logLevels[options.logLevel]))
  return options.logFormat === "json" ? leveled.pipe(Effect.provide(Logger.layer([Logger.consoleJson]))) : leveled
}

const start = (options: StartOptions) => Effect.gen(function* () {
  if (options.formatCluster !== undefined && !existsSync(options.path)) {
    yield* format({ path: options.path, cluster: options.formatCluster, replica: 0, replicaCount: 1, profile: "production" })
  }
  const { superblock, storage: opened } = yield* superblockOf(options.path, options.development)
  const cluster = superblock?.cluster
  // Started as its own cluster, the file would leave every client of --cluster waiting forever.
  if (options.formatCluster !== undefined && cluster !== undefined && cluster !== options.formatCluster) {
    return yield* new ReplicaOpenError({ path: options.path, reason: `the data file belongs to cluster ${cluster}, not to --cluster=${options.formatCluster}; refusing to start it` })
  }
  // An unreadable superblock: the replica refuses to open and says why; the bus only needs a seat meanwhile.
  const replicaCount = superblock?.vsrState.replicaCount ?? options.addresses.length
  if (replicaCount !== options.addresses.length) {
    return yield* new ReplicaOpenError({ path: options.path, reason: `the data file is of a cluster of ${replicaCount} replicas, but --addresses names ${options.addresses.length}` })
  }
  const index = superblock === undefined ? 0 : replicaIndexOf(superblock)
  // The bus dials the replicas above this one (tcp_dialer.ts): their ports must be known.
  const unknown = options.addresses.findIndex((address, i) => i > index && address.port === 0)
  if (unknown >= 0) {
    return yield* new ReplicaOpenError({ path: options.path, reason: `--addresses gives replica ${unknown} port 0, but replica ${index} dials it: name its port` })
  }
  const { host, port } = options.addresses[index]!
  // In --log-format=json every line from here on, the replica's fibers' (forked as its layer builds) too, names its replica and cluster.
  const annotations = { replica: index, cluster: String(cluster ?? 0n) }
  const annotate = <A, E, R>(effect: Effect.Effect<A, E, R>) => options.logFormat === "json" ? Effect.annotateLogs(effect, annotations) : effect
  if (superblock !== undefined) {
    yield* annotate(Effect.logInfo(`scarab ${packageVersion()}: replica ${index} of cluster ${superblock.cluster}, ` +
      `addresses ${options.addresses.map(formatAddressText).join(",")}, data file ${options.path}, ` +
      `storage ${opened.implementation} (${opened.directIo ? "Direct I/O" : "page cache"}), ${superblock.profile} profile`))
  }
  if (options.cacheGrid !== undefined) {
    yield* Effect.logWarning(`--cache-grid=${options.cacheGrid.text} (${options.cacheGrid.bytes} bytes) is not applied: Scarab's grid cache is a ` +
      "fixed small LRU, since the grid is read only at start-up (the ledger is held in memory, bounded by --accounts-max and --transfers-max)")
  }
  const storage = layerStorageFile({ path: options.path, directIo: opened.directIo })
  const bus = layerMessageBusTcp({ host, port, cluster: cluster ?? 0n, replica: index, replicaAddresses: options.addresses })
  const layer = layerReplica.pipe(Layer.provide(Layer.merge(storage, bus)), Layer.provide(Layer.succeed(LedgerCapacity, options.capacity)))
  const replica = Context.get(yield* annotate(Layer.build(layer)), Replica)
  yield* annotate(exportMetrics(options))
  return yield* annotate(replica.stopped.pipe(Effect.onInterrupt(() => Effect.flatMap(replica.commitOp, (commit) =>
    Effect.logInfo(`replica ${index}: stopping on a signal at commit op ${commit}: closing its port and ${options.path}`)))))
}).pipe(Effect.scoped)

/** `--metrics` and `--statsd` (src/layers/metrics.ts), loaded only when asked for: without them a replica starts as before. */
const exportMetrics = (options: Pick<StartOptions, "metrics" | "statsd">) => Effect.gen(function* () {
  if (options.metrics === undefined && options.statsd === undefined) return
  const exporters = yield* Effect.promise(() => import("../layers/metrics.ts"))
  if (options.metrics !== undefined) yield* Layer.build(exporters.layerPrometheusHttp(options.metrics))
  if (options.statsd !== undefined) yield* Layer.build(exporters.layerStatsd(options.statsd))
})

/**
 * The file's superblock, whose cluster, replica index and replica count the bus needs before the
 * replica opens; undefined when it is unreadable (the replica then refuses to open and says why).
 * Where Direct I/O is unavailable (a file system refusing O_DIRECT, no native addon for aligned
 * buffers), `development` opens it on the page cache instead, and the replica then does too.
 */
const superblockOf = (path: string, development: boolean) => peekWith(path, true).pipe(
  Effect.catchTag("StorageOpenError", (error) => !directIoRefusals.has(error.code) ? Effect.fail(error) : development
    ? Effect.andThen(Effect.logWarning(`${path}: Direct I/O is unavailable (${error.reason}); --development: the page cache with O_DSYNC ` +
      "instead, which is not safe for production"), peekWith(path, false))
    : Effect.fail(new StorageOpenError({ ...error, reason: `${error.reason} ('scarab start --development' runs on the page cache instead; not for production)` }))))

/** The codes of a data file's open that mean Direct I/O is unavailable here (disk_file.ts, disk.ts). */
const directIoRefusals: ReadonlySet<string> = new Set(["EINVAL", "ENOALIGN"])

const peekWith = (path: string, directIo: boolean) => Effect.gen(function* () {
  const storage = yield* Storage
  return { superblock: yield* peekSuperblock(storage), storage: { implementation: storage.implementation, directIo: storage.directIo } }
}).pipe(Effect.provide(layerStorageFile({ path, directIo })))

/** package.json's version (two folders up from src/cli/ and from dist/cli/). */
function packageVersion(): string {
  const manifest: unknown = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8"))
  return typeof manifest === "object" && manifest !== null && "version" in manifest && typeof manifest.version === "string" ? manifest.version : "unknown"
}
