#!/usr/bin/env node
/**
 * The `scarab` binary: format a data file, start a replica on it, talk to it from a REPL, print
 * the version, benchmark. What each command takes, every option with its default, is in
 * usage.ts, which `scarab help`, `scarab --help` and `scarab <command> --help` print; what the
 * commands that run do is in commands.ts, loaded only when one runs.
 *
 * Arguments are parsed by hand so that every mistake gets one clear sentence and exit code 2;
 * failures at run time (a missing file, a file of another cluster, an address in use) exit 1;
 * help and version exit 0.
 */
import { readFileSync } from "node:fs"
import { assert } from "../assert.ts"
import { native, nativeUnavailableReason } from "../native.ts"
import { releaseClientMin, releaseFormat, releaseScarab, replicasMax } from "../protocol/header.ts"
import type { FormatOptions } from "../storage/format.ts"
import { parseAddress, parseArguments, parseByteSize, parseU128, parseUint, UsageError, type Parsed } from "./arguments.ts"
import type { StartOptions } from "./commands.ts"
import { inspectOptions } from "./inspect_options.ts"
import { commandHelpText, commandNamed, synopsis, usageText } from "./usage.ts"

/** The largest capacities `start` accepts: what a 24 GiB machine can hold in memory, and more. */
const accountsMaxLimit = 1 << 24
const transfersMaxLimit = 1 << 26

async function main(argv: ReadonlyArray<string>): Promise<void> {
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
      case "format": {
        const options = formatOptions(parsed)
        return (await import("./commands.ts")).runFormat(options)
      }
      case "start": {
        const options = startOptions(parsed)
        return (await import("./commands.ts")).runStart(options)
      }
      case "repl":
        return (await import("./commands.ts")).runRepl(parsed)
      case "benchmark":
        return (await import("./commands.ts")).runBenchmark(parsed)
      case "inspect": {
        const options = inspectOptions(parsed)
        return (await import("./inspect.ts")).runInspect(options)
      }
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

function formatOptions(parsed: Parsed): FormatOptions {
  parsed.allowOnly(["cluster", "replica", "replica-count", "profile"])
  const replicaCount = parseUint(parsed.required("replica-count"), "--replica-count", 1, 6)
  const replica = parseUint(parsed.required("replica"), "--replica", 0, replicaCount - 1)
  const profile = parsed.flags.get("profile") ?? "production"
  if (profile !== "production" && profile !== "test") throw new UsageError(`--profile must be production or test, not '${profile}'`)
  return { path: parsed.path(), cluster: parseU128(parsed.required("cluster"), "--cluster"), replica, replicaCount, profile }
}

function startOptions(parsed: Parsed): StartOptions {
  parsed.allowOnly(["addresses", "format-if-missing", "cluster", "accounts-max", "transfers-max", "log-level", "log-format", "metrics", "statsd",
    "log-debug", "cache-grid", "development"])
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
  const metrics = parsed.flags.get("metrics")
  const statsd = parsed.flags.get("statsd")
  // --log-debug is TigerBeetle's spelling of --log-level=debug.
  const logDebug = parsed.switchGiven("log-debug")
  if (logDebug && parsed.flags.has("log-level")) throw new UsageError("--log-debug is --log-level=debug: give one of them")
  const logLevel = logDebug ? "debug" : parsed.flags.get("log-level") ?? "info"
  if (!isLogLevel(logLevel)) throw new UsageError(`--log-level must be debug, info, warn or error, not '${logLevel}'`)
  const logFormat = parsed.flags.get("log-format") ?? "text"
  if (logFormat !== "text" && logFormat !== "json") throw new UsageError(`--log-format must be text or json, not '${logFormat}'`)
  const cacheGrid = parsed.flags.get("cache-grid")
  return {
    logLevel, logFormat, development: parsed.switchGiven("development"),
    cacheGrid: cacheGrid === undefined ? undefined : { text: cacheGrid, bytes: parseByteSize(parsed.required("cache-grid"), "--cache-grid") },
    metrics: metrics === undefined ? undefined : parseAddress(metrics, 0), statsd: statsd === undefined ? undefined : parseAddress(statsd),
    path: parsed.path(), addresses, formatCluster: formatIfMissing ? parseU128(parsed.required("cluster"), "--cluster") : undefined,
    capacity: {
      ...(accountsMax === undefined ? {} : { accountsMax: parseUint(accountsMax, "--accounts-max", 1, accountsMaxLimit) }),
      ...(transfersMax === undefined ? {} : { transfersMax: parseUint(transfersMax, "--transfers-max", 1, transfersMaxLimit) })
    }
  }
}

function isLogLevel(text: string): text is StartOptions["logLevel"] {
  return text === "debug" || text === "info" || text === "warn" || text === "error"
}

void main(process.argv.slice(2))
