/**
 * Question: how many transfers per second does an application get through Scarab's network
 * client (`layerClient`, the `Ledger` service over TCP), next to TigerBeetle's official
 * `tigerbeetle-node@0.17.9`, on the same replica?
 *
 * Two shapes of load, each client running both:
 * - batch: one caller sends batches of 8189 transfers, one after the other (a bulk import);
 * - fan-in: `--fibers` callers (default 10,000) each create one transfer at the same instant,
 *   in `--rounds` rounds (an API server under load): Scarab's callers are Effect fibers
 *   (`Effect.forEach` with unbounded concurrency), the official client's are promises; each
 *   client merges the calls it holds into requests.
 *
 * Workload (TigerBeetle's canonical one): 10,000 accounts, transfers of amount 1 between random
 * distinct accounts (src/cli/workload.ts, the same seed for both clients). Inputs are plain
 * transfer objects with every field, built before timing; both clients get the same objects.
 * The first `--warmup` batches or rounds of each case (default 3) are sent before the clock
 * starts, so that the figures describe a running application rather than a cold JIT: with one
 * warm-up round, the next two rounds of Scarab's fan-in still ran at half speed while V8
 * optimised the Effect runtime's and the session's code, which then weighed on a 10-round run.
 *
 * Every measured case runs in a fresh process of its own (this file with `--case`) against a
 * fresh `scarab start` process on a fresh production-profile data file: no case inherits
 * another's ledger, heap, JIT state or native client threads, so the four are comparable.
 *
 * Measured path: from the first call to the last result, everything an application waits for:
 * its objects are validated and encoded by the client, sent over TCP to the replica, prepared,
 * written to the WAL (O_DSYNC), committed, executed, answered, and decoded into result objects.
 * Scarab's typed API is measured (`ledger.createTransfers`), not the zero-copy `submit`, because
 * that is what the official client offers. Every result is checked to be `created`. The replica
 * and the client share the machine's cores, so a client that burns more CPU leaves less for the
 * replica: that is part of what is measured.
 *
 * Usage: npm run bench:client [-- --batches=N --fibers=N --rounds=N --accounts=N --warmup=N]
 * Prints a table and ends with `RESULT {json}`.
 */
import { spawn } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { createRequire } from "node:module"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { performance } from "node:perf_hooks"
import { Effect } from "effect"
import { layerClient, Ledger, type TransferInput } from "../src/index.ts"
import { parseArguments, parseUint, UsageError, type Parsed } from "../src/cli/arguments.ts"
import { formatDataFile, startReplica, stopReplica } from "../src/cli/replica_child.ts"
import { accountBatch, transferBatch, xorshift } from "../src/cli/workload.ts"
import { accountSize, batchEventsMax, transferSize } from "../src/protocol/operation.ts"
import { decodeAccount, decodeBatch, decodeTransfer, type Account, type Transfer } from "../src/protocol/records.ts"

interface Sizes {
  readonly batches: number
  readonly fibers: number
  readonly rounds: number
  readonly accounts: number
  readonly warmup: number
}

const clients = ["scarab", "official"] as const
const shapes = ["batch", "fan-in"] as const
type Client = (typeof clients)[number]
type Shape = (typeof shapes)[number]

const clientNames: Record<Client, string> = { scarab: "scarab layerClient", official: "tigerbeetle-node 0.17.9" }
const created = 0xffff_ffff
const usage = "Usage: npm run bench:client [-- --batches=N --fibers=N --rounds=N --accounts=N --warmup=N]"

// --- one case, in its own process -------------------------------------------------------------

/** The steps of a case: the first `warmup` are the warm-up. Batch: batches of 8189; fan-in: rounds of `fibers` calls. */
function stepsOf(shape: Shape, sizes: Sizes): Array<Array<Transfer>> {
  const random = xorshift(42)
  const [count, size] = shape === "batch" ? [sizes.warmup + sizes.batches, batchEventsMax] : [sizes.warmup + sizes.rounds, sizes.fibers]
  return Array.from({ length: count }, (_, i) =>
    decodeBatch(transferBatch(random, sizes.accounts, 1 + i * size, size), transferSize, decodeTransfer))
}

/** Creates the accounts, runs the `warmup` first steps, then times the others; answers the milliseconds. */
type Driver = (port: number, accounts: ReadonlyArray<Account>, shape: Shape, steps: ReadonlyArray<ReadonlyArray<Transfer>>, warmup: number) => Promise<number>

const scarab: Driver = (port, accounts, shape, steps, warmup) => Effect.runPromise(Effect.gen(function* () {
  const ledger = yield* Ledger
  for (let first = 0; first < accounts.length; first += batchEventsMax) {
    const results = yield* ledger.createAccounts(accounts.slice(first, first + batchEventsMax))
    check(results.map((r) => r.statusCode), "create_accounts")
  }
  const batch = Effect.fnUntraced(function* (transfers: ReadonlyArray<Transfer>) {
    const results = yield* ledger.createTransfers(transfers as ReadonlyArray<TransferInput>)
    check(results.map((r) => r.statusCode), "create_transfers")
  })
  const round = Effect.fnUntraced(function* (transfers: ReadonlyArray<Transfer>) {
    const results = yield* Effect.forEach(transfers, (transfer) => ledger.createTransfers([transfer]), { concurrency: "unbounded" })
    check(results.map(([r]) => r!.statusCode), "create_transfers")
  })
  const step = shape === "batch" ? batch : round
  for (const transfers of steps.slice(0, warmup)) yield* step(transfers)
  const start = performance.now()
  for (const transfers of steps.slice(warmup)) yield* step(transfers)
  return performance.now() - start
}).pipe(Effect.provide(layerClient({ cluster: 0n, addresses: [port] }))))

const official: Driver = async (port, accounts, shape, steps, warmup) => {
  const tb: typeof import("tigerbeetle-node") = createRequire(import.meta.url)("tigerbeetle-node")
  const client = tb.createClient({ cluster_id: 0n, replica_addresses: [String(port)] })
  try {
    for (let first = 0; first < accounts.length; first += batchEventsMax) {
      const results = await client.createAccounts(accounts.slice(first, first + batchEventsMax))
      check(results.map((r) => r.status), "create_accounts")
    }
    const batch = async (transfers: ReadonlyArray<Transfer>) => {
      const results = await client.createTransfers(transfers as Array<Transfer>)
      check(results.map((r) => r.status), "create_transfers")
    }
    const round = async (transfers: ReadonlyArray<Transfer>) => {
      const results = await Promise.all(transfers.map((transfer) => client.createTransfers([transfer])))
      check(results.map(([r]) => r!.status), "create_transfers")
    }
    const step = shape === "batch" ? batch : round
    for (const transfers of steps.slice(0, warmup)) await step(transfers)
    const start = performance.now()
    for (const transfers of steps.slice(warmup)) await step(transfers)
    return performance.now() - start
  } finally {
    client.destroy()
  }
}

/** Runs one case against a replica process on a fresh data file (both gone afterwards) and prints `CASE {json}`. */
async function runCase(client: Client, shape: Shape, sizes: Sizes): Promise<void> {
  const accounts = decodeBatch(accountBatch(1, sizes.accounts), accountSize, decodeAccount)
  const steps = stepsOf(shape, sizes)
  const directory = mkdtempSync(join(tmpdir(), "scarab-bench-client-"))
  try {
    const path = join(directory, "0_0.scarab")
    formatDataFile(path)
    const replica = await startReplica(path)
    try {
      const ms = await (client === "scarab" ? scarab : official)(replica.port, accounts, shape, steps, sizes.warmup)
      const transfers = steps.slice(sizes.warmup).reduce((sum, step) => sum + step.length, 0)
      console.log(`CASE ${JSON.stringify({ client, shape, transfers, ms })}`)
    } finally {
      await stopReplica(replica)
    }
  } finally {
    rmSync(directory, { recursive: true, force: true })
  }
}

// --- the run: every case in a child process ---------------------------------------------------

interface Measured {
  readonly client: Client
  readonly shape: Shape
  readonly transfers: number
  readonly ms: number
}

async function main(sizes: Sizes): Promise<void> {
  log(`bench:client: ${sizes.accounts} accounts; batch: ${sizes.batches} × ${batchEventsMax} transfers; ` +
    `fan-in: ${sizes.rounds} rounds of ${sizes.fibers} concurrent single-transfer calls; ${sizes.warmup} warm-up steps; each case in its own process and replica`)
  const results: Array<Measured> = []
  for (const shape of shapes) {
    for (const client of clients) {
      const measured = await childCase(client, shape, sizes)
      results.push(measured)
      log(`  ${clientNames[client]}, ${shape}: ${tps(measured).toLocaleString("en")} transfers/s`)
    }
  }
  report(results)
}

function childCase(client: Client, shape: Shape, sizes: Sizes): Promise<Measured> {
  const args = [new URL(import.meta.url).pathname, `--case=${client}:${shape}`,
    ...Object.entries(sizes).map(([name, value]) => `--${name}=${value}`)]
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "inherit"] })
    let output = ""
    child.stdout.on("data", (chunk) => (output += chunk))
    child.once("error", reject)
    child.once("exit", (code, signal) => {
      const line = output.split("\n").find((l) => l.startsWith("CASE "))
      if (code !== 0 || line === undefined) return reject(new Error(`case ${client}:${shape} failed (${code ?? signal}):\n${output}`))
      resolve(JSON.parse(line.slice("CASE ".length)) as Measured)
    })
  })
}

function report(results: ReadonlyArray<Measured>): void {
  const find = (client: Client, shape: Shape) => results.find((r) => r.client === client && r.shape === shape)!
  const rows = shapes.map((shape) => {
    const [ours, theirs] = [tps(find("scarab", shape)), tps(find("official", shape))]
    return [shape, find("scarab", shape).transfers.toLocaleString("en"), ours.toLocaleString("en"), theirs.toLocaleString("en"), `${(ours / theirs).toFixed(2)}×`]
  })
  table(["load", "transfers", "scarab tx/s", "official tx/s", "scarab / official"], rows)
  console.log(`RESULT ${JSON.stringify({
    client_batch_tps: tps(find("scarab", "batch")),
    official_batch_tps: tps(find("official", "batch")),
    client_fanin_tps: tps(find("scarab", "fan-in")),
    official_fanin_tps: tps(find("official", "fan-in"))
  })}`)
}

// --- helpers ----------------------------------------------------------------------------------

function parseSizes(parsed: Parsed): Sizes {
  const flag = (name: string, fallback: number, min: number, max: number) =>
    parseUint(parsed.flags.get(name) ?? String(fallback), `--${name}`, min, max)
  // The defaults keep a whole run near a minute on a two-core machine.
  return {
    batches: flag("batches", 40, 1, 500),
    fibers: flag("fibers", 10_000, 1, 100_000),
    rounds: flag("rounds", 10, 1, 100),
    accounts: flag("accounts", 10_000, 2, batchEventsMax * 20),
    warmup: flag("warmup", 3, 1, 20)
  }
}

function parseCase(text: string): { client: Client; shape: Shape } {
  const [client, shape] = text.split(":")
  if (!clients.includes(client as Client) || !shapes.includes(shape as Shape)) throw new UsageError(`--case must be <scarab|official>:<batch|fan-in>, not '${text}'`)
  return { client: client as Client, shape: shape as Shape }
}

function check(statuses: ReadonlyArray<number>, what: string): void {
  const failed = statuses.findIndex((status) => status !== created)
  if (failed >= 0) throw new Error(`${what}: event ${failed} failed with status ${statuses[failed]}`)
}

const tps = (measured: Measured): number => Math.round(measured.transfers / (measured.ms / 1000))

function table(header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)))
  const line = (cells: ReadonlyArray<string>) => cells.map((cell, i) => i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!)).join("  ")
  console.log(line(header))
  console.log(widths.map((w) => "-".repeat(w)).join("  "))
  for (const row of rows) console.log(line(row))
}

const log = (line: string): void => { process.stderr.write(`${line}\n`) }

try {
  const parsed = parseArguments(["bench:client", ...process.argv.slice(2)])
  parsed.allowOnly(["batches", "fibers", "rounds", "accounts", "warmup", "case"])
  if (parsed.positional.length > 0) throw new UsageError(`unexpected argument '${parsed.positional[0]}'`)
  const sizes = parseSizes(parsed)
  const only = parsed.flags.get("case")
  if (only === undefined) await main(sizes)
  else {
    const { client, shape } = parseCase(only)
    await runCase(client, shape, sizes)
  }
} catch (error) {
  if (!(error instanceof UsageError)) throw error
  console.error(`bench:client: ${error.message}\n${usage}`)
  process.exit(2)
}
