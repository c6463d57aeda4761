/**
 * The `scarab` binary's answers to bad input: usage mistakes exit 2 with one clear sentence,
 * failures at run time exit 1 naming the file or address, and nothing is overwritten. Its help
 * and version: `--help`, `-h` and `help` exit 0, every command's help lists every option it
 * accepts with its default (and each default is what the command does without the option), and
 * `version` names package.json's version and the TigerBeetle release it speaks.
 */
import { readFileSync, writeFileSync } from "node:fs"
import { type AddressInfo, createServer } from "node:net"
import { afterEach, describe, expect, it } from "vitest"
import { parseArguments } from "../../src/cli/arguments.ts"
import { benchmarkOptions } from "../../src/cli/benchmark.ts"
import { replOptions } from "../../src/cli/repl.ts"
import { commandNamed, commands, documentedDefaults } from "../../src/cli/usage.ts"
import { defaultLimits } from "../../src/ledger/memory_store.ts"
import { releaseClientMin, releaseFormat, releaseScarab } from "../../src/protocol/header.ts"
import { storageConfigs } from "../../src/storage/layout.ts"
import { format, scarabSync, startReplica, temporaryDataFile, type DataDirectory } from "../integration/replica_process.ts"

let data: DataDirectory | undefined
afterEach(() => {
  data?.remove()
  data = undefined
})

describe("scarab CLI", () => {
  it.each([
    [[], "Usage"],
    [["frobnicate"], "unknown command 'frobnicate'"],
    [["format", "--cluster=abc", "--replica=0", "--replica-count=1", "x"], "--cluster must be a decimal number, not 'abc'"],
    [["format", "--cluster=0", "--replica=0", "--replica-count=1"], "the data file's path is missing"],
    [["format", "--cluster=0", "--replica=0", "x"], "--replica-count=<value> is required"],
    [["format", "--cluster=0", "--replica=0", "--replica-count=7", "x"], "--replica-count must be between 1 and 6, not 7"],
    [["format", "--cluster=0", "--replica=3", "--replica-count=3", "x"], "--replica must be between 0 and 2, not 3"],
    [["format", `--cluster=${1n << 128n}`, "--replica=0", "--replica-count=1", "x"], "--cluster must be below 2^128"],
    [["start", "--addresses=99999", "x"], "between 0 and 65535"],
    [["start", "--addresses=3000", "--bogus", "x"], "unknown flag --bogus"],
    [["start", "--addresses=1,2,3,4,5,6,7", "x"], "--addresses names 7 replicas; a cluster has at most 6"],
    [["start", "--addresses=3000,3001", "--format-if-missing", "--cluster=0", "x"], "--format-if-missing formats a single-replica cluster"],
    [["benchmark", "--replica-count=7"], "--replica-count must be between 1 and 6, not 7"],
    [["benchmark", "--addresses=3000", "--replica-count=3"], "--addresses names 1 replicas but --replica-count is 3"],
    [["benchmark", "--replica-count=3", "--restart-points=1000"], "--restart-points restarts a single replica the benchmark starts itself"],
    [["benchmark", "--cluster=1"], "--cluster names the cluster at --addresses"],
    [["start", "--addresses=3000", "--transfers-max=0", "x"], "--transfers-max must be between 1 and 67108864, not 0"],
    [["start", "--addresses=3000", "--accounts-max=many", "x"], "--accounts-max must be a whole number, not 'many'"],
    [["start", "--addresses=::1:3000", "x"], "address '::1:3000' has more than one colon: write an IPv6 address in brackets, as in [::1]:3001"],
    [["start", "--addresses=[::1:3000", "x"], "address '[::1:3000' is not an IPv6 address in brackets"],
    [["start", "--addresses=[localhost]:3000", "x"], "is not an IPv6 address in brackets"],
    [["start", "--addresses=[::1]3000", "x"], "a port follows the brackets after a colon"],
    [["start", "--addresses=3000,", "x"], "an address is empty (a comma too many?)"],
    [["start", "--addresses=3000", "--cache-grid=4GB", "x"], "--cache-grid must be a size such as 1GiB or 512MiB"],
    [["start", "--addresses=3000", "--log-debug", "--log-level=info", "x"], "--log-debug is --log-level=debug: give one of them"],
    [["start", "--addresses=3000", "--development=yes", "x"], "--development takes no value"],
    [["benchmark", "--clients=4"], "--clients=4: Scarab's load generator is one client with one request in flight; only --clients=1 is supported"],
    [["benchmark", "--transfer-count=5", "--transfers=5"], "--transfer-count and --transfers are the same option; give one"],
    [["benchmark", "--id-order=zigzag"], "--id-order must be sequential, random or reversed, not 'zigzag'"],
    [["benchmark", "--seed=-1"], "--seed must be a whole number, not '-1'"],
    [["repl", "--cluster=0", "--addresses=3000", "--timeout=5"], "--timeout must be a duration with its unit (500ms, 5s, 2m, 1h), not '5'"]
  ])("refuses %j with a usage error", (args, message) => {
    const result = scarabSync(args)
    expect(result.status).toBe(2)
    expect(result.stderr + result.stdout).toContain(message)
  })


  it("names a missing data file", () => {
    const result = scarabSync(["start", "--addresses=3000", "/nonexistent/scarab.data"])
    expect(result.status).toBe(1)
    expect(result.stderr).toContain("scarab: /nonexistent/scarab.data: cannot open the data file (ENOENT)")
  })

  it("--development starts where Direct I/O is unavailable (no native addon), on the page cache, saying so; --cache-grid is logged as not applied", async () => {
    data = temporaryDataFile()
    format(data.path)
    const withoutAddon = { ...process.env, SCARAB_NATIVE: "off" }
    const refused = scarabSync(["start", "--addresses=0", data.path], withoutAddon)
    expect(refused.status).toBe(1)
    expect(refused.stderr).toContain("(ENOALIGN): Direct I/O needs sector-aligned buffers from the native addon")
    expect(refused.stderr).toContain("('scarab start --development' runs on the page cache instead; not for production)")
    // The child takes the environment when it is spawned, synchronously inside startReplica.
    const previous = process.env.SCARAB_NATIVE
    process.env.SCARAB_NATIVE = "off"
    const starting = startReplica(data.path, 0, ["--development", "--cache-grid=4GiB", "--log-debug"])
    if (previous === undefined) delete process.env.SCARAB_NATIVE
    else process.env.SCARAB_NATIVE = previous
    const replica = await starting
    try {
      expect(replica.output()).toContain("--development: the page cache with O_DSYNC instead, which is not safe for production")
      expect(replica.output()).toContain("--cache-grid=4GiB (4294967296 bytes) is not applied: Scarab's grid cache is a fixed small LRU")
      expect(replica.output()).toMatch(/ DEBUG /) // --log-debug: the storage layer's debug lines are printed
    } finally {
      await replica.kill()
    }
  })

  it("a replica listens on IPv6 ([::1]) and a client reaches it there", async (context) => {
    const probe = createServer()
    const ipv6 = await new Promise<boolean>((resolve) => {
      probe.once("error", () => resolve(false))
      probe.listen(0, "::1", () => probe.close(() => resolve(true)))
    })
    if (!ipv6) return context.skip("this machine has no IPv6 loopback (::1)")
    data = temporaryDataFile()
    format(data.path)
    const replica = await startReplica(data.path, "[::1]:0")
    try {
      expect(replica.output()).toContain("addresses [::1]:0,") // its start-up line writes the address as it is read
      const result = scarabSync(["repl", "--cluster=0", `--addresses=[::1]:${replica.port}`, "--timeout=60s",
        "--command=create_accounts id=1 code=1 ledger=1; lookup_accounts id=1"])
      expect(result.status, result.stderr).toBe(0)
      expect(result.stdout).toMatch(/^ *1 +1 +1 +- +0 +0 +0 +0 +\d+$/m)
    } finally {
      await replica.kill()
    }
  })

  it("refuses a file that is not a Scarab data file, and never formats over an existing file", () => {
    data = temporaryDataFile()
    writeFileSync(data.path, Buffer.alloc(1 << 20, 7))
    const start = scarabSync(["start", "--addresses=3000", data.path])
    expect(start.status).toBe(1)
    expect(start.stderr).toContain("superblock: not found: no copy has a valid checksum")
    const again = scarabSync(["format", "--cluster=0", "--replica=0", "--replica-count=1", data.path])
    expect(again.status).toBe(1)
    expect(again.stderr).toContain("EEXIST")
  })

  it("refuses to start --format-if-missing on an existing file of another cluster, naming both clusters", () => {
    data = temporaryDataFile()
    format(data.path, 5n)
    const result = scarabSync(["start", "--addresses=0", "--format-if-missing", "--cluster=0", data.path])
    expect(result.status).toBe(1)
    const errors = result.stderr.split("\n").filter((line) => line.startsWith("scarab:"))
    expect(errors).toEqual([`scarab: ${data.path}: the data file belongs to cluster 5, not to --cluster=0; refusing to start it`])
  })

  it("refuses a cluster's data file started with another number of addresses, or with a port 0 it must dial", () => {
    data = temporaryDataFile()
    format(data.path, 0n, 0, 3)
    const fewer = scarabSync(["start", "--addresses=0", data.path])
    expect(fewer.status).toBe(1)
    expect(fewer.stderr).toContain("the data file is of a cluster of 3 replicas, but --addresses names 1")
    // Replica 0 dials replicas 1 and 2: their ports must be known (0 is the kernel's pick, for a listener).
    const unknown = scarabSync(["start", "--addresses=0,0,0", data.path])
    expect(unknown.status).toBe(1)
    expect(unknown.stderr).toContain("--addresses gives replica 1 port 0, but replica 0 dials it: name its port")
  })

  it("names an address already in use", async () => {
    data = temporaryDataFile()
    format(data.path)
    // The blocker takes a port the kernel picks: a port chosen first and bound later could be taken meanwhile.
    const blocker = createServer()
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve))
    const port = (blocker.address() as AddressInfo).port
    try {
      const result = scarabSync(["start", `--addresses=${port}`, data.path])
      expect(result.status).toBe(1)
      expect(result.stderr).toContain(`127.0.0.1:${port}`)
      expect(result.stderr).toContain("EADDRINUSE")
    } finally {
      await new Promise<void>((resolve) => blocker.close(() => resolve()))
    }
  })
})

describe("scarab benchmark's TigerBeetle options", () => {
  it("takes TigerBeetle's names and Scarab's earlier ones for the same counts", () => {
    const tigerBeetle = benchmarkOptions(parseArguments(["benchmark", "--transfer-count=5000", "--account-count=20", "--query-count=3"]))
    const earlier = benchmarkOptions(parseArguments(["benchmark", "--transfers=5000", "--accounts=20", "--queries=3"]))
    expect([tigerBeetle.transfers, tigerBeetle.accounts, tigerBeetle.queries]).toEqual([5000, 20, 3])
    expect([earlier.transfers, earlier.accounts, earlier.queries]).toEqual([5000, 20, 3])
    const options = benchmarkOptions(parseArguments(["benchmark", "--id-order=reversed", "--transfer-pending", "--seed=9", "--clients=1"]))
    expect([options.idOrder, options.transferPending, options.seed]).toEqual(["reversed", true, 9])
  })

})

describe("scarab help and version", () => {
  const packageVersion = (JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }).version
  const versionLine = `Scarab version ${packageVersion} (TigerBeetle ${releaseFormat(releaseScarab)} wire protocol)`

  it.each([[["--help"]], [["-h"]], [["help"]]])("%j prints the usage, naming every command, and exits 0", (args) => {
    const result = scarabSync(args)
    expect(result.status).toBe(0)
    expect(result.stderr).toBe("")
    expect(result.stdout).toContain("Usage: scarab <command> [options]")
    for (const command of commands) expect(result.stdout).toMatch(new RegExp(`^  ${command.name} +\\S`, "m"))
  })

  it("with no command prints the usage on stderr and exits 2", () => {
    const result = scarabSync([])
    expect(result.status).toBe(2)
    expect(result.stderr).toContain("Usage: scarab <command> [options]")
  })

  it("version and --version name package.json's version and the wire release, and exit 0", () => {
    for (const args of [["version"], ["--version"]]) {
      const result = scarabSync(args)
      expect(result.status).toBe(0)
      expect(result.stdout).toBe(`${versionLine}\n`)
    }
  })

  it("version --verbose adds name=value lines: the releases it speaks and serves, Node, the native addon", () => {
    const result = scarabSync(["version", "--verbose"])
    expect(result.status).toBe(0)
    const lines = result.stdout.trimEnd().split("\n")
    expect(lines[0]).toBe(versionLine)
    expect(lines).toContain(`release=${releaseFormat(releaseScarab)}`)
    expect(lines).toContain(`release_client_min=${releaseFormat(releaseClientMin)}`)
    expect(lines).toContain(`node=${process.version}`)
    expect(lines.some((line) => /^native_addon=(on|off) \(/.test(line))).toBe(true)
  })

  for (const command of commands) {
    it(`'${command.name} --help' and 'help ${command.name}' list every option with its default and exit 0`, () => {
      const outputs = [[command.name, "--help"], ["help", command.name]].map((args) => {
        const result = scarabSync(args)
        expect(result.status, `${args.join(" ")}: ${result.stderr}`).toBe(0)
        return result.stdout
      })
      expect(new Set(outputs).size).toBe(1)
      const help = outputs[0]!
      expect(help).toMatch(new RegExp(`^Usage: scarab ${command.name}\\b`))
      for (const option of command.options) {
        const flag = `--${option.name}${option.value === undefined ? "" : `=${option.value}`}`
        const shown = option.default === "required" ? "(required)" : `(default: ${option.default})`
        expect(help.split("\n")).toContain(`  ${flag}  ${shown}`)
      }
      expect(help).toContain("-h, --help")
      for (const line of help.split("\n")) expect(line.length, line).toBeLessThanOrEqual(100)
    })

    // The command refuses an unknown flag only after asserting that the flags it accepts are the
    // ones its help lists (Parsed.allowOnly): an undocumented option would crash this instead.
    it(`'${command.name}' accepts exactly the options its help lists`, () => {
      const result = scarabSync([command.name, "--no-such-option"])
      expect(result.status).toBe(2)
      expect(result.stderr).toContain(`unknown flag --no-such-option for '${command.name}'`)
    })
  }

  it("-h is --help, after a command or before it", () => {
    const outputs = [["start", "--help"], ["start", "-h"], ["-h", "start"], ["--help", "start"]].map((args) => {
      const result = scarabSync(args)
      expect(result.status, `${args.join(" ")}: ${result.stderr}`).toBe(0)
      return result.stdout
    })
    expect(new Set(outputs).size).toBe(1)
    expect(outputs[0]).toMatch(/^Usage: scarab start /)
  })

  it("a usage error names the command's synopsis and where its options are described", () => {
    const result = scarabSync(["format", "--cluster=0", "--replica=0", "x"])
    expect(result.status).toBe(2)
    expect(result.stderr).toContain("Usage: scarab format --cluster=<u128>")
    expect(result.stderr).toContain("'scarab format --help' lists its options with their defaults.")
  })

  it.each([
    [["help", "frobnicate"], "unknown command 'frobnicate'"],
    [["frobnicate", "--help"], "unknown command 'frobnicate'"],
    [["help", "format", "start"], "help takes one command, got format start"],
    [["version", "--verbose=yes"], "--verbose takes no value, got 'yes'"],
    [["version", "extra"], "version takes no arguments, got extra"],
    [["start", "--addresses=3000", "--format-if-missing=no", "--cluster=0", "x"], "--format-if-missing takes no value, got 'no'"]
  ])("refuses %j with a usage error", (args, message) => {
    const result = scarabSync(args)
    expect(result.status).toBe(2)
    expect(result.stderr).toContain(message)
  })

  // Each documented default is what the command does without the option (checked where the
  // command's options are parsed in-process; start's capacities are the ledger's own limits).
  it("the documented defaults are the ones the commands use", () => {
    const documented = (command: string, option: string) => commandNamed(command)!.options.find((o) => o.name === option)!.default
    const benchmark = benchmarkOptions(parseArguments(["benchmark"]))
    for (const [names, value] of [[["transfer-count", "transfers"], benchmark.transfers], [["account-count", "accounts"], benchmark.accounts],
      [["query-count", "queries"], benchmark.queries], [["seed"], benchmark.seed], [["id-order"], benchmark.idOrder]] as const) {
      for (const name of names) expect(documented("benchmark", name)).toBe(String(value))
    }
    expect(benchmark.transferPending).toBe(false)
    expect(replOptions(parseArguments(["repl", "--cluster=0", "--addresses=3000"])).timeoutMs).toBeUndefined()
    expect(benchmark.restartPoints.join(",")).toBe(documented("benchmark", "restart-points"))
    expect(benchmark.replicaCount).toBe(1)
    expect(documented("benchmark", "replica-count")).toMatch(/^1\b/)
    expect(String(benchmarkOptions(parseArguments(["benchmark", "--addresses=3000"])).cluster)).toBe(documented("benchmark", "cluster"))
    expect(benchmark.cpuProfileDirectory).toBeUndefined()
    expect(replOptions(parseArguments(["repl", "--cluster=0", "--addresses=3000"])).command).toBeUndefined()
    expect(documented("start", "accounts-max")).toBe(String(defaultLimits.accountsMax))
    expect(documented("start", "transfers-max")).toBe(String(defaultLimits.transfersMax))
    expect(documented("format", "profile")).toBe("production")
    // Written out in usage.ts so that help does not load Effect: the same numbers as their sources.
    expect(documentedDefaults.accountsMax).toBe(defaultLimits.accountsMax)
    expect(documentedDefaults.transfersMax).toBe(defaultLimits.transfersMax)
    for (const profile of ["production", "test"] as const) {
      const { journalSlotCount, checkpointOps, blockSize } = storageConfigs[profile]
      expect(documentedDefaults[profile]).toEqual({ journalSlotCount, checkpointOps, blockSize })
    }
  })
})
