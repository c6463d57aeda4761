/**
 * `npm run sim -- --seed=<u64> [--ticks=N] [--log=debug] [--mutant=<name>] [--clients=N] [--replicas=N]`: one simulated run
 * (`--replicas` above 1: a cluster in normal operation, without faults until repair arrives).
 * Prints the seed, the drawn parameters, progress, the trace hash and a one-line verdict, then
 * `RESULT {json}`. Exit codes (simulation.md §8.3): 0 ok, 128 liveness failure, 129 checker
 * failure, 2 usage error.
 */
import { mutants, runSimulation, type Mutant, type SwarmParameters } from "./simulator.ts"
import { parseCount, parseFlags, parseSeed } from "./seed.ts"
import { ticksDefault } from "./main_defaults.ts"

function main(argv: ReadonlyArray<string>): number {
  let seed: bigint
  let ticks: number
  let log: "info" | "debug"
  let mutant: Mutant
  let overrides: Partial<SwarmParameters> = {}
  let replicaCount: number
  try {
    const flags = parseFlags(argv, ["seed", "ticks", "log", "mutant", "clients", "replicas"])
    replicaCount = parseCount(flags.get("replicas"), "replicas", 1)
    if (replicaCount > 6) throw new Error("--replicas must be 1 to 6")
    if (flags.has("clients")) overrides = { clientCount: parseCount(flags.get("clients"), "clients", 1) }
    const seedText = flags.get("seed")
    if (seedText === undefined) throw new Error("--seed=<u64> is required")
    seed = parseSeed(seedText)
    ticks = parseCount(flags.get("ticks"), "ticks", ticksDefault)
    const logText = flags.get("log") ?? "info"
    if (logText !== "info" && logText !== "debug") throw new Error("--log must be info or debug")
    log = logText
    const mutantText = flags.get("mutant") ?? "none"
    if (!(mutants as ReadonlyArray<string>).includes(mutantText)) throw new Error(`--mutant must be one of ${mutants.join(", ")}`)
    mutant = mutantText as Mutant
  } catch (error) {
    console.error(`sim: ${(error as Error).message}`)
    return 2
  }
  console.log(`seed ${seed}`)
  const result = runSimulation({ seed, ticks, log, mutant, overrides, replicaCount, print: (line) => console.log(line), onParameters: (p) => console.log(`parameters ${JSON.stringify(p)}`) })
  console.log(`trace hash ${result.traceHash} (${result.stats.traceEvents} events, ${result.ticksRun} ticks)`)
  const clients = (overrides.clientCount === undefined ? "" : ` --clients=${overrides.clientCount}`) + (replicaCount === 1 ? "" : ` --replicas=${replicaCount}`)
  const replay = `npm run sim -- --seed=${seed} --ticks=${ticks}${mutant === "none" ? "" : ` --mutant=${mutant}`}${clients} --log=debug`
  const first = result.violations[0]
  if (first === undefined) {
    console.log(`verdict ok: ${result.stats.repliesChecked} replies checked against the model over ${result.stats.opsChecked} ops, ${result.stats.crashes} crashes`)
  } else {
    console.log(`verdict violation: ${first.invariant} at tick ${first.tick}: ${first.detail}`)
    console.log(`replay: ${replay}`)
  }
  console.log("RESULT " + JSON.stringify({
    seed: seed.toString(), trace_hash: result.traceHash, verdict: result.verdict, ticks: result.ticksRun,
    ...(first === undefined ? {} : { invariant: first.invariant, detail: first.detail, replay }),
    ...(mutant === "none" ? {} : { mutant }),
    stats: result.stats
  }))
  if (first === undefined) return 0
  return first.invariant === "liveness" ? 128 : 129
}

if (import.meta.main) process.exitCode = main(process.argv.slice(2))
