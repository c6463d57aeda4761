/**
 * The request fuzzer's long run (`npm run fuzz:requests -- --requests=1000000 --seed=N`): the
 * same fuzzer as test/integration/request_fuzz.test.ts with a larger budget. It prints progress,
 * then exactly one `RESULT {json}` line; on a failure, the failure (with its seed and how to
 * replay it) and exit code 1. Ctrl-C interrupts the run and removes its data file.
 *
 * Options: --requests (default 100000), --seed (default: from the clock), --restart-every
 * (default 2000 requests), --accounts-max and --transfers-max (the ledger's capacity, default
 * 8192 and 32768), --operations (which operations the fuzzed requests carry, e.g. `2,140-147`;
 * default all of 0-255), --progress-every (default 10000), --verbose (the replica's log).
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Effect } from "effect"
import { failureText, type FuzzOptions, type FuzzReport, runRequestFuzz } from "./request_fuzzer.ts"

const usage = "usage: npm run fuzz:requests -- [--requests=N] [--seed=N] [--restart-every=N] [--accounts-max=N] [--transfers-max=N] " +
  "[--operations=LIST] [--progress-every=N] [--verbose]"

const args = parseArgs(process.argv.slice(2))
const seed = integer("seed", Date.now() % 0x7fffffff)
const requests = integer("requests", 100_000)
const restartEvery = integer("restart-every", 2000)
const options: FuzzOptions = {
  seed,
  requests,
  restartEvery,
  capacity: { accountsMax: integer("accounts-max", 8192), transfersMax: integer("transfers-max", 32768) },
  ...(args.has("operations") ? { operations: operationList(args.get("operations")!) } : {}),
  replay: (failed) => `npm run fuzz:requests -- --seed=${failed} --requests=${requests} --restart-every=${restartEvery}` +
    ["accounts-max", "transfers-max", "operations"].filter((name) => args.has(name)).map((name) => ` --${name}=${args.get(name)}`).join(""),
  print: (line) => console.log(line),
  progressEvery: integer("progress-every", 10_000),
  verbose: args.has("verbose")
}

console.log(`request fuzzer: seed ${seed}, ${requests} requests, a restart every ${restartEvery}`)
// runMain interrupts the run on SIGINT/SIGTERM, so the fuzzer's scope removes its data file.
NodeRuntime.runMain(Effect.gen(function* () {
  const exit = yield* Effect.exit(runRequestFuzz(options))
  if (exit._tag === "Success") return printReport(exit.value)
  console.error(failureText(exit.cause))
  process.exitCode = 1
}))

function printReport(report: FuzzReport): void {
  console.log(`replies by operation: ${JSON.stringify(report.repliesByOperation)}`)
  console.log(`evictions by reason: ${JSON.stringify(report.evictionsByReason)}`)
  if (report.warningSamples.length > 0) console.log(`replica warnings (${report.warnings}): ${report.warningSamples.join(" | ")}`)
  console.log("RESULT " + JSON.stringify({
    requests: report.requests,
    restarts: report.restarts,
    restarts_with_requests_in_flight: report.restartsWithRequestsInFlight,
    seed: report.seed,
    requests_per_second: Math.round(report.requests / (report.elapsedMs / 1000)),
    evictions: report.evictions,
    replies: report.replies,
    dropped: report.dropped,
    dropped_by_bus: report.droppedByBus,
    retries_identical: report.retriesIdentical,
    prepared_ops: report.preparedOps,
    checkpoint_op: report.checkpointOp,
    accounts_created: report.accountsCreated,
    operations_sent: report.operationsSent.length,
    operations_sent_in_session: report.operationsSentInSession.length,
    largest_body_bytes: report.largestBodyBytes,
    warnings: report.warnings,
    elapsed_s: Math.round(report.elapsedMs / 100) / 10
  }))
}

function parseArgs(argv: ReadonlyArray<string>): Map<string, string> {
  const parsed = new Map<string, string>()
  for (const arg of argv) {
    const match = /^--([a-z-]+)(?:=(.*))?$/.exec(arg)
    if (match === null) fail(`unexpected argument ${arg}`)
    parsed.set(match[1]!, match[2] ?? "")
  }
  return parsed
}

function integer(name: string, fallback: number): number {
  const text = args.get(name)
  if (text === undefined) return fallback
  const value = Number(text)
  if (!Number.isSafeInteger(value) || value < 0) fail(`--${name} must be a non-negative integer, got "${text}"`)
  return value
}

/** `2,140-147` → [2, 140, 141, …, 147]. */
function operationList(text: string): Array<number> {
  const operations = new Set<number>()
  for (const part of text.split(",")) {
    const match = /^(\d+)(?:-(\d+))?$/.exec(part.trim())
    if (match === null) fail(`--operations: "${part}" is not a number or a range`)
    const from = Number(match[1])
    const to = Number(match[2] ?? match[1])
    if (from > to || to > 255) fail(`--operations: "${part}" is not within 0-255`)
    for (let operation = from; operation <= to; operation++) operations.add(operation)
  }
  return [...operations]
}

function fail(message: string): never {
  console.error(`${message}\n${usage}`)
  process.exit(2)
}
