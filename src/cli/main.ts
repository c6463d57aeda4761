#!/usr/bin/env node
/**
 * The `scarab` binary: format a data file, start a replica on it, talk to it from a REPL, print
 * the version, benchmark. What each command takes, every option with its default, is in
 * usage.ts, which `scarab help`, `scarab --help` and `scarab <command> --help` print.
 *
 * Arguments are parsed by hand so that every mistake gets one clear sentence and exit code 2;
 * failures at run time (a missing file, a file of another cluster, an address in use) exit 1;
 * help and version exit 0.
 */
import { existsSync, readFileSync } from "node:fs"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Cause, Context, Effect, Layer } from "effect"
import { LedgerCapacity, layerReplica, Replica, ReplicaOpenError } from "../actors/replica.ts"
import { assert } from "../assert.ts"
import type { LedgerOptions } from "../ledger/ledger.ts"
import { formatDataFile, layerStorageFile } from "../layers/disk.ts"
import { layerMessageBusTcp, type ReplicaAddress } from "../layers/network_tcp.ts"
import { native, nativeUnavailableReason } from "../native.ts"
import { releaseClientMin, releaseFormat, releaseScarab, replicasMax } from "../protocol/header.ts"
import type { FormatOptions } from "../storage/format.ts"
import { layoutOf, storageConfigs } from "../storage/layout.ts"
import { Storage } from "../storage/storage.ts"
import { peekSuperblock, replicaIndexOf } from "../storage/superblock.ts"
import { benchmark, benchmarkOptions } from "./benchmark.ts"
import { repl, replOptions } from "./repl.ts"
import { parseAddress, parseArguments, parseU128, parseUint, UsageError, type Parsed } from "./arguments.ts"
import { commandHelpText, commandNamed, synopsis, usageText } from "./usage.ts"

/** The largest capacities `start` accepts: what a 24 GiB machine can hold in memory, and more. */
const accountsMaxLimit = 1 << 24
const transfersMaxLimit = 1 << 26

function main(argv: ReadonlyArray<string>): void {
  let parsed: Parsed | undefined
  try {
    parsed = parseArguments(argv)
    if (parsed.command === undefined) {
      console.error(usageText())
      process.exit(2)
    }
    if (parsed.command === "help" || parsed.flags.has("help")) return console.log(helpText(parsed))
    switch (parsed.command) {
      case "version":
        return console.log(versionText(versionOptions(parsed)))
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
    const command = commandNamed(parsed?.command ?? argv[0] ?? "")
    const help = command === undefined || command.name === "help" ? usageText() :
      `${synopsis(command, "Usage: ")}\n'scarab ${command.name} --help' lists its options with their defaults.`
    console.error(`scarab: ${error.message}\n\n${help}`)
    process.exit(2)
  }
}

/** `scarab help [command]` and `scarab <command> --help`: the whole usage, or the command's options (exit 0). */
function helpText(parsed: Parsed): string {
  if (parsed.command === "help") {
    parsed.allowOnly([])
    if (parsed.positional.length > 1) throw new UsageError(`help takes one command, got ${parsed.positional.join(" ")}`)
  }
  // `help --help` asks for help's own help, as `help help` does.
  const name = parsed.command !== "help" ? parsed.command : parsed.positional[0] ?? (parsed.flags.has("help") ? "help" : undefined)
  if (name === undefined) return usageText()
  const command = commandNamed(name)
  if (command === undefined) throw new UsageError(`unknown command '${name}'`)
  return commandHelpText(command)
}

function versionOptions(parsed: Parsed): { readonly verbose: boolean } {
  parsed.allowOnly(["verbose"])
  if (parsed.positional.length > 0) throw new UsageError(`version takes no arguments, got ${parsed.positional.join(" ")}`)
  return { verbose: parsed.switchGiven("verbose") }
}

/**
 * As `tigerbeetle version`: "Scarab version <package.json's version>", naming the TigerBeetle
 * release whose wire protocol it speaks (the release its replicas advertise); with --verbose,
 * name=value lines as TigerBeetle's.
 */
function versionText(options: { readonly verbose: boolean }): string {
  const manifest: unknown = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8"))
  const version = typeof manifest === "object" && manifest !== null && "version" in manifest ? manifest.version : undefined
  assert(typeof version === "string", () => "package.json names a version")
  const line = `Scarab version ${version} (TigerBeetle ${releaseFormat(releaseScarab)} wire protocol)`
  if (!options.verbose) return line
  return [
    line,
    "",
    `release=${releaseFormat(releaseScarab)}`,
    `release_client_min=${releaseFormat(releaseClientMin)}`,
    `replicas_max=${replicasMax}`,
    `node=${process.version}`,
    `native_addon=${native === undefined ? `off (${nativeUnavailableReason})` : native.aesNi ? "on (AES-NI)" : "on (no AES-NI: TypeScript checksums)"}`
  ].join("\n")
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
  const formatIfMissing = parsed.switchGiven("format-if-missing")
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
