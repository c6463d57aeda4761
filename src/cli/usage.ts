/**
 * What `scarab` and each of its commands take: the text of `--help`, of `scarab help <command>`
 * and of usage errors. Every option a command accepts is described here with its default, and
 * `Parsed.allowOnly` (arguments.ts) asserts that a command accepts exactly the options listed
 * here, so an option cannot be accepted without being documented, nor documented and refused.
 */
import { releaseFormat, releaseScarab, replicasMax } from "../protocol/header.ts"

/**
 * Defaults that live in modules which load Effect (the ledger's limits, the storage profiles):
 * written out here so that help starts fast; test/cli/cli.test.ts checks them against those
 * modules.
 */
export const documentedDefaults = {
  /** `defaultLimits` of src/ledger/memory_store.ts. */
  accountsMax: 1 << 22,
  transfersMax: 1 << 24,
  /** `productionConfig` and `testConfig` of src/storage/layout.ts. */
  production: { journalSlotCount: 1024, checkpointOps: 960, blockSize: 512 * 1024 },
  test: { journalSlotCount: 64, checkpointOps: 32, blockSize: 4096 }
} as const
const { production, test } = documentedDefaults

export interface OptionHelp {
  /** The flag's name, without its dashes. */
  readonly name: string
  /** How its value is written (`<u128>`), or undefined for a switch, which takes none. */
  readonly value: string | undefined
  /** What holds when the option is not given: its default value, `required`, or a short phrase. */
  readonly default: string
  readonly description: string
}

export interface CommandHelp {
  readonly name: string
  readonly summary: string
  /** What follows the options in the synopsis: the positional arguments, if any. */
  readonly positional: string
  readonly options: ReadonlyArray<OptionHelp>
  /** Paragraphs printed after the options. */
  readonly notes: string
}

const clusterOption: OptionHelp = {
  name: "cluster", value: "<u128>", default: "required",
  description: "The cluster's id, a decimal number below 2^128, the same on every replica and client of the cluster."
}

const addressesHelp = "An address is a port (3000, on 127.0.0.1), host:port (127.0.0.1:3000), a host (port 3001), or an IPv6 " +
  "address in brackets, with a port or without ([::1]:3000, [::1])."

export const commands: ReadonlyArray<CommandHelp> = [
  {
    name: "format", summary: "Create the data file of one replica of a cluster.", positional: "<path>",
    options: [
      clusterOption,
      { name: "replica", value: "<index>", default: "required", description: "This replica's index in the cluster, 0 to --replica-count - 1." },
      { name: "replica-count", value: "<n>", default: "required", description: `The number of replicas in the cluster, 1 to ${replicasMax}.` },
      {
        name: "profile", value: "production|test", default: "production",
        description: `production: ${production.journalSlotCount} WAL slots, a checkpoint every ${production.checkpointOps} ops, ` +
          `${production.blockSize / 1024} KiB grid blocks; test: a small file for tests (${test.journalSlotCount} WAL slots, ` +
          `a checkpoint every ${test.checkpointOps} ops, ${test.blockSize / 1024} KiB grid blocks).`
      }
    ],
    notes: "format never overwrites an existing file, and reserves the file's space up front."
  },
  {
    name: "start", summary: "Run a replica on its data file, serving clients and its peers.", positional: "<path>",
    options: [
      {
        name: "addresses", value: "<address>[,<address>...]", default: "required",
        description: "Every replica's address, in index order, the same on every replica: this one listens on the address at its " +
          "index (port 0: a port the kernel picks, named in the 'serving on port' line) and dials those above it."
      },
      { name: "format-if-missing", value: undefined, default: "off", description: "Format a missing data file first, as replica 0 of a cluster of one (with --cluster)." },
      { ...clusterOption, default: "required with --format-if-missing", description: "The cluster a missing file is formatted for; an existing file of another cluster is refused." },
      { name: "accounts-max", value: "<n>", default: String(documentedDefaults.accountsMax), description: "The most accounts the ledger holds in memory; a create beyond it is refused, and logged." },
      { name: "transfers-max", value: "<n>", default: String(documentedDefaults.transfersMax), description: "The most transfers the ledger holds in memory (about 4 GiB at the default)." },
      { name: "log-level", value: "debug|info|warn|error", default: "info", description: "The least severe log lines printed." },
      { name: "log-format", value: "text|json", default: "text", description: "json: one JSON object per line (timestamp, level, message, annotations), for machines." },
      {
        name: "metrics", value: "<host>:<port>", default: "off",
        description: "Serve the replica's figures in Prometheus text format at GET /metrics on this address (port 0: one the kernel picks, logged)."
      },
      { name: "statsd", value: "<host>:<port>", default: "off", description: "Send the replica's figures as statsd datagrams (UDP, DogStatsD tags) to this address, once a second." },
      { name: "log-debug", value: undefined, default: "off", description: "TigerBeetle's spelling of --log-level=debug." },
      {
        name: "cache-grid", value: "<size><KiB|MiB|GiB|TiB>", default: "1GiB, TigerBeetle's; not applied",
        description: "TigerBeetle's grid cache size. Scarab's grid is read only at start-up, through a fixed small cache; the ledger " +
          "is held in memory (--accounts-max, --transfers-max). The size is checked and logged as not applied, so TigerBeetle's scripts run."
      },
      {
        name: "development", value: undefined, default: "off",
        description: "As TigerBeetle's: start even where Direct I/O is unavailable (a file system that refuses O_DIRECT, or no native " +
          "addon), on the page cache with O_DSYNC, with a warning. Not for production. Nothing else changes."
      }
    ],
    notes: `${addressesHelp} A cluster's data files are formatted one by one with 'scarab format'.`
  },
  {
    name: "repl", summary: "Run TigerBeetle's REPL statements against a cluster.", positional: "",
    options: [
      clusterOption,
      { name: "addresses", value: "<address>[,<address>...]", default: "required", description: "Every replica's address, in index order." },
      {
        name: "command", value: "'<statements>'", default: "none: an interactive session",
        description: "Run these statements (separated by ';') and exit; exit code 1 at the first that fails."
      },
      {
        name: "timeout", value: "<duration>", default: "none: wait until answered",
        description: "Give up on a statement without a reply after this long (500ms, 5s, 2m, 1h): name the cluster that did not " +
          "answer, then exit 1 (--command) or go on. A create given up on may still commit."
      }
    ],
    notes: addressesHelp
  },
  {
    name: "benchmark", summary: "Load a cluster with transfers, then queries; print throughput and latencies.", positional: "",
    options: [
      { name: "replica-count", value: "<n>", default: "1, or the number of --addresses", description: `Replicas the benchmark formats and starts on this host, 1 to ${replicasMax}.` },
      { name: "addresses", value: "<address>[,<address>...]", default: "none: the benchmark starts its own replicas", description: "Load the running cluster at these addresses instead." },
      { name: "cluster", value: "<u128>", default: "0", description: "The id of the cluster at --addresses." },
      { name: "transfer-count", value: "<n>", default: "2000000", description: "Transfers to create, in batches of 8189 (TigerBeetle's name)." },
      { name: "transfers", value: "<n>", default: "2000000", description: "Scarab's earlier name for --transfer-count." },
      { name: "account-count", value: "<n>", default: "10000", description: "Accounts the transfers move amounts between, in random pairs (TigerBeetle's name)." },
      { name: "accounts", value: "<n>", default: "10000", description: "Scarab's earlier name for --account-count." },
      { name: "query-count", value: "<n>", default: "100", description: "Queries of each kind after the load (TigerBeetle's name)." },
      { name: "queries", value: "<n>", default: "100", description: "Scarab's earlier name for --query-count." },
      {
        name: "id-order", value: "sequential|random|reversed", default: "sequential",
        description: "The order of the transfers' ids: counting up, a seeded random permutation, or counting down."
      },
      { name: "transfer-pending", value: undefined, default: "off", description: "Create every transfer pending (two-phase, no timeout)." },
      { name: "seed", value: "<u32>", default: "42", description: "Seeds the workload's randomness: the account pairs, the random id order, the queries." },
      {
        name: "clients", value: "1", default: "1",
        description: "TigerBeetle's concurrent load clients. Scarab's load generator is one client with one request in flight: other values are refused."
      },
      {
        name: "restart-points", value: "<n>[,<n>...]|none", default: "1000000,5000000,10000000",
        description: "Transfer counts at which a second replica is checkpointed, killed and restarted, timing each restart; " +
          "only for a single replica the benchmark starts (otherwise none)."
      },
      { name: "replica-cpu-prof", value: "<directory>", default: "none", description: "Run the replicas the benchmark starts with --cpu-prof, writing their profiles here." }
    ],
    notes: "Prints a RESULT {json} line at the end."
  },
  {
    name: "inspect", summary: "Show what a data file holds, offline and read-only; verify its checksums.", positional: "<subcommand> [<path>]",
    options: [{ name: "json", value: undefined, default: "off", description: "Print the report as one JSON document instead of text." }],
    notes: "Subcommands: 'superblock <path>': every superblock copy (valid or damaged, sequence, checksum) and the selected " +
      "copy's VSR state. 'wal <path>': each WAL slot (op, checksum, view, operation) and what journal recovery decides for it " +
      "(eql, nil, fix, vsr, cut, cut_torn, with its case). 'replies <path>': the checkpoint's client sessions and whether each " +
      "reply is intact. 'grid <path>': the checkpoint's free set and blocks by type. 'integrity <path>': every checksum of the " +
      "file; exit 1 naming what is damaged. 'constants': the layout of the production and test profiles. It works on files " +
      "'scarab start' refuses, and never writes."
  },
  {
    name: "version", summary: "Print Scarab's version and the TigerBeetle release it speaks.", positional: "",
    options: [{ name: "verbose", value: undefined, default: "off", description: "Also print the client releases served, Node's version and the native addon's state, as name=value lines." }],
    notes: ""
  },
  { name: "help", summary: "Print this help, or a command's: scarab help <command>.", positional: "[<command>]", options: [], notes: "" }
]

export function commandNamed(name: string): CommandHelp | undefined {
  return commands.find((command) => command.name === name)
}

/** Help text is wrapped to this many columns. */
const columnsMax = 100

/** A command's synopsis, `scarab format --cluster=<u128> … <path>`, wrapped under its first line. */
export function synopsis(command: CommandHelp, indent = ""): string {
  const options = command.options.map((option) => option.default === "required" ? flagOf(option) : `[${flagOf(option)}]`)
  const words = [...options, command.positional].filter((word) => word !== "")
  const lead = `${indent}scarab ${command.name} `
  return wrap(words, lead, " ".repeat(lead.length))
}

/** `scarab <command> --help`: the synopsis, then every option with its default, then the notes. */
export function commandHelpText(command: CommandHelp): string {
  const lines = [synopsis(command, "Usage: "), "", command.summary, "", "Options:"]
  for (const option of command.options) {
    lines.push(`  ${flagOf(option)}  (${option.default === "required" ? "required" : `default: ${option.default}`})`)
    lines.push(wrap(option.description.split(" "), "      ", "      "))
  }
  lines.push("  -h, --help", "      Print this help and exit.")
  if (command.notes !== "") lines.push("", wrap(command.notes.split(" "), "", ""))
  return lines.join("\n")
}

/** `scarab --help`: the commands, their synopses, and how a cluster's replicas are named. */
export function usageText(): string {
  const width = Math.max(...commands.map((command) => command.name.length)) + 2
  return [
    `Scarab: a financial transactions database, speaking TigerBeetle ${releaseFormat(releaseScarab)}'s wire protocol.`,
    "",
    "Usage: scarab <command> [options]",
    "",
    "Commands:",
    ...commands.map((command) => `  ${command.name.padEnd(width)}${command.summary}`),
    "",
    ...commands.map((command) => synopsis(command, "  ")),
    "",
    "'scarab <command> --help' lists a command's options with their defaults; 'scarab --version' is",
    "'scarab version'.",
    "",
    `A cluster has 1 to ${replicasMax} replicas. Each replica's data file is formatted with its index and the`,
    "cluster's size; every replica starts with the same --addresses, by index, and listens on its own.",
    addressesHelp
  ].join("\n")
}

function flagOf(option: OptionHelp): string {
  return `--${option.name}${option.value === undefined ? "" : `=${option.value}`}`
}

/** The words after `first`, as many a line as fit in `columnsMax` (at least one), continued after `indent`. */
function wrap(words: ReadonlyArray<string>, first: string, indent: string): string {
  const lines = [first]
  let wordsOnLine = 0
  for (const word of words) {
    const line = lines[lines.length - 1]!
    if (wordsOnLine > 0 && line.length + 1 + word.length > columnsMax) {
      lines.push(indent + word)
      wordsOnLine = 1
    } else {
      lines[lines.length - 1] = wordsOnLine === 0 ? line + word : `${line} ${word}`
      wordsOnLine++
    }
  }
  return lines.join("\n")
}
