#!/usr/bin/env node
/**
 * The `scarab` binary: format a data file, start a replica on it, talk to it from a REPL, print
 * the version, benchmark.
 *
 *   scarab format --cluster=<u128> --replica=<i> --replica-count=<n> [--profile=production|test] <path>
 *   scarab start --addresses=<address>[,…] [--format-if-missing --cluster=<u128>] [--accounts-max=<n>] [--transfers-max=<n>] <path>
 *     (the same addresses on every replica of a cluster, by index; --format-if-missing for a cluster of one only)
 *   scarab repl --cluster=<u128> --addresses=<address>[,…] [--command='<statements>']
 *   scarab version
 *   scarab benchmark [--replica-count=<n> | --addresses=<address>,… [--cluster=<u128>]] [--transfers=<n>] [--accounts=<n>]
 *                    [--queries=<n>] [--restart-points=<n>,…|none] [--replica-cpu-prof=<dir>]
 *
 * Arguments are parsed by hand so that every mistake gets one clear sentence and exit code 2;
 * failures at run time (a missing file, a file of another cluster, an address in use) exit 1.
 */
import { existsSync } from "node:fs"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Cause, Context, Effect, Layer } from "effect"
import { LedgerCapacity, layerReplica, Replica, ReplicaOpenError } from "../actors/replica.ts"
import type { LedgerOptions } from "../ledger/ledger.ts"
import { formatDataFile, layerStorageFile } from "../layers/disk.ts"
import { layerMessageBusTcp, type ReplicaAddress } from "../layers/network_tcp.ts"
import { releaseFormat, releaseScarab, replicasMax } from "../protocol/header.ts"
import type { FormatOptions } from "../storage/format.ts"
import { layoutOf, storageConfigs } from "../storage/layout.ts"
import { Storage } from "../storage/storage.ts"
import { peekSuperblock, replicaIndexOf } from "../storage/superblock.ts"
import { benchmark, benchmarkOptions } from "./benchmark.ts"
import { repl, replOptions } from "./repl.ts"
import { parseAddress, parseArguments, parseU128, parseUint, UsageError, type Parsed } from "./arguments.ts"

const usage = `Usage:
  scarab format --cluster=<u128> --replica=<index> --replica-count=<n> [--profile=production|test] <path>
  scarab start --addresses=<address>[,<address>...] [--format-if-missing --cluster=<u128>]
               [--accounts-max=<n>] [--transfers-max=<n>] <path>
  scarab repl --cluster=<u128> --addresses=<address>[,<address>...] [--command='<statements>']
  scarab version
  scarab benchmark [--replica-count=<n> | --addresses=<address>[,<address>...] [--cluster=<u128>]]
                   [--transfers=<n>] [--accounts=<n>] [--queries=<n>] [--restart-points=<n>[,<n>...]|none]
                   [--replica-cpu-prof=<directory>]

A cluster has 1 to 6 replicas. Each replica's data file is formatted with its index and the
cluster's size; every replica starts with the same --addresses, by index, and listens on its own.
An address is a port (3000), host:port (127.0.0.1:3000) or a host (port 3001). start takes
port 0 for a port the kernel picks, which it names when it serves; in a cluster only for its own
address (or one of a lower index: a replica dials only the replicas above it).
benchmark starts --replica-count replicas of its own on this host (default 1), or loads the
running cluster at --addresses.
--accounts-max and --transfers-max bound what the ledger holds in memory (defaults 4194304 and
16777216, about 4 GiB at the transfer limit); a create beyond them is refused, and logged.`

/** The largest capacities `start` accepts: what a 24 GiB machine can hold in memory, and more. */
const accountsMaxLimit = 1 << 24
const transfersMaxLimit = 1 << 26

function main(argv: ReadonlyArray<string>): void {
  let parsed: Parsed
  try {
    parsed = parseArguments(argv)
    if (parsed.flags.has("help") || parsed.command === undefined) {
      console.log(usage)
      process.exit(parsed.command === undefined && !parsed.flags.has("help") ? 2 : 0)
    }
    switch (parsed.command) {
      case "version":
        console.log(`scarab ${releaseFormat(releaseScarab)} (TigerBeetle ${releaseFormat(releaseScarab)} wire protocol)`)
        return
      case "format":
        return NodeRuntime.runMain(reportFailure(format(formatOptions(parsed))))
      case "start":
        return NodeRuntime.runMain(exitWhenStopped(reportFailure(start(startOptions(parsed)))))
      case "repl":
        return NodeRuntime.runMain(reportFailure(repl(replOptions(parsed))))
      case "benchmark":
        return void benchmark(benchmarkOptions(parsed)).catch((error: unknown) => {
          console.error(`scarab: benchmark failed: ${error instanceof Error ? error.message : String(error)}`)
          process.exitCode = 1
        })
      default:
        throw new UsageError(`unknown command '${parsed.command}'`)
    }
  } catch (error) {
    if (!(error instanceof UsageError)) throw error
    console.error(`scarab: ${error.message}\n\n${usage}`)
    process.exit(2)
  }
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

function formatOptions(parsed: Parsed): FormatOptions {
  parsed.allowOnly(["cluster", "replica", "replica-count", "profile"])
  const replicaCount = parseUint(parsed.required("replica-count"), "--replica-count", 1, 6)
  const replica = parseUint(parsed.required("replica"), "--replica", 0, replicaCount - 1)
  const profile = parsed.flags.get("profile") ?? "production"
  if (profile !== "production" && profile !== "test") throw new UsageError(`--profile must be production or test, not '${profile}'`)
  return { path: parsed.path(), cluster: parseU128(parsed.required("cluster"), "--cluster"), replica, replicaCount, profile }
}

/** Creates the file (never over an existing one), writes the journal's root, then the superblock. */
const format = (options: FormatOptions) =>
  formatDataFile(options).pipe(Effect.tap(() => Effect.logInfo(
    `${options.path}: formatted replica ${options.replica} of cluster ${options.cluster} (${options.profile} profile, ` +
      `${layoutOf(storageConfigs[options.profile]).dataFileSizeMin} bytes)`)))

interface StartOptions {
  readonly path: string
  /** Every replica's address, by index: the data file's own replica listens on its entry and dials the ones above it. */
  readonly addresses: ReadonlyArray<ReplicaAddress>
  readonly formatCluster: bigint | undefined
  readonly capacity: LedgerOptions
}

function startOptions(parsed: Parsed): StartOptions {
  parsed.allowOnly(["addresses", "format-if-missing", "cluster", "accounts-max", "transfers-max"])
  const listed = parsed.required("addresses").split(",")
  if (listed.length > replicasMax) throw new UsageError(`--addresses names ${listed.length} replicas; a cluster has at most ${replicasMax}`)
  // Port 0 listens on a port the kernel picks, named in the "serving on port" log line (as
  // TigerBeetle's --addresses=0): a test then never races another process for a port. In a
  // cluster only the replica's own entry, or one it never dials, may be 0 (checked at start).
  const addresses = listed.map((address) => parseAddress(address, 0))
  const formatIfMissing = parsed.flags.has("format-if-missing")
  if (formatIfMissing !== parsed.flags.has("cluster")) throw new UsageError("--format-if-missing and --cluster go together")
  // Formatting on start picks replica 0 of a cluster of one; a cluster's files name their replica, so they are formatted one by one.
  if (formatIfMissing && addresses.length !== 1) throw new UsageError("--format-if-missing formats a single-replica cluster: a cluster's data files are formatted with 'scarab format'")
  const accountsMax = parsed.flags.get("accounts-max")
  const transfersMax = parsed.flags.get("transfers-max")
  return {
    path: parsed.path(), addresses, formatCluster: formatIfMissing ? parseU128(parsed.required("cluster"), "--cluster") : undefined,
    capacity: {
      ...(accountsMax === undefined ? {} : { accountsMax: parseUint(accountsMax, "--accounts-max", 1, accountsMaxLimit) }),
      ...(transfersMax === undefined ? {} : { transfersMax: parseUint(transfersMax, "--transfers-max", 1, transfersMaxLimit) })
    }
  }
}

const start = (options: StartOptions) => Effect.gen(function* () {
  if (options.formatCluster !== undefined && !existsSync(options.path)) {
    yield* format({ path: options.path, cluster: options.formatCluster, replica: 0, replicaCount: 1, profile: "production" })
  }
  const superblock = yield* superblockOf(options.path)
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
  const storage = layerStorageFile({ path: options.path })
  const bus = layerMessageBusTcp({ host, port, cluster: cluster ?? 0n, replica: index, replicaAddresses: options.addresses })
  const layer = layerReplica.pipe(Layer.provide(Layer.merge(storage, bus)), Layer.provide(Layer.succeed(LedgerCapacity, options.capacity)))
  const replica = Context.get(yield* Layer.build(layer), Replica)
  return yield* replica.stopped
}).pipe(Effect.scoped)

/**
 * The file's superblock, whose cluster, replica index and replica count the bus needs before the
 * replica opens; undefined when it is unreadable (the replica then refuses to open and says why).
 */
const superblockOf = (path: string) => Effect.gen(function* () {
  return yield* peekSuperblock(yield* Storage)
}).pipe(Effect.provide(layerStorageFile({ path })))

main(process.argv.slice(2))
