/**
 * `npm run sim:swarm -- --seeds=<n> [--from=<seed>] [--ticks=N] [--mutant=<name>] [--replicas=N]`: many seeds
 * in one process (each run is independent: fresh scheduler, clock, disk and network). Prints a
 * progress line, every failing seed with its first violated invariant and its replay command,
 * then `RESULT {"seeds":…,"failed":…,"seeds_per_minute":…,"ticks_per_second":…}`. Exit code 1
 * if any seed failed.
 */
import { ticksDefault } from "./main_defaults.ts"
import { mutants, runSimulation, type Mutant, type SimResult, type SwarmParameters } from "./simulator.ts"
import { parseCount, parseFlags, parseSeed } from "./seed.ts"
import { wallClockMs } from "./wall_clock.ts"

export interface SwarmSummary {
  readonly seeds: number
  readonly failed: ReadonlyArray<{ readonly seed: string; readonly invariant: string; readonly detail: string }>
  readonly ticks: number
  readonly elapsedMs: number
}

/** Runs `count` consecutive seeds from `from`; `onResult` sees each run. */
export function runSwarm(
  from: bigint, count: number, ticks: number, mutant: Mutant, onResult?: (result: SimResult) => void, overrides: Partial<SwarmParameters> = {},
  replicaCount = 1
): SwarmSummary {
  const start = wallClockMs()
  const failed: Array<{ seed: string; invariant: string; detail: string }> = []
  let ticksRun = 0
  for (let i = 0; i < count; i++) {
    const seed = (from + BigInt(i)) & ((1n << 64n) - 1n)
    const result = runSimulation({ seed, ticks, log: "quiet", mutant, overrides, replicaCount })
    ticksRun += result.ticksRun
    const first = result.violations[0]
    if (first !== undefined) failed.push({ seed: result.seed, invariant: first.invariant, detail: first.detail })
    onResult?.(result)
  }
  return { seeds: count, failed, ticks: ticksRun, elapsedMs: wallClockMs() - start }
}

function main(argv: ReadonlyArray<string>): number {
  let count: number
  let from: bigint
  let ticks: number
  let mutant: Mutant
  let overrides: Partial<SwarmParameters> = {}
  let replicaCount: number
  try {
    const flags = parseFlags(argv, ["seeds", "from", "ticks", "mutant", "clients", "replicas"])
    replicaCount = parseCount(flags.get("replicas"), "replicas", 1)
    if (replicaCount > 6) throw new Error("--replicas must be 1 to 6")
    if (flags.has("clients")) overrides = { clientCount: parseCount(flags.get("clients"), "clients", 1) }
    count = parseCount(flags.get("seeds"), "seeds", 100)
    from = flags.has("from") ? parseSeed(flags.get("from")!) : 1n
    ticks = parseCount(flags.get("ticks"), "ticks", ticksDefault)
    const mutantText = flags.get("mutant") ?? "none"
    if (!(mutants as ReadonlyArray<string>).includes(mutantText)) throw new Error(`--mutant must be one of ${mutants.join(", ")}`)
    mutant = mutantText as Mutant
  } catch (error) {
    console.error(`sim:swarm: ${(error as Error).message}`)
    return 2
  }
  console.log(`swarm: seeds ${from}..${from + BigInt(count) - 1n}, ${ticks} ticks each${mutant === "none" ? "" : `, mutant ${mutant}`}` +
    (overrides.clientCount === undefined ? "" : `, ${overrides.clientCount} clients`) + (replicaCount === 1 ? "" : `, ${replicaCount} replicas`))
  let done = 0
  const barWidth = 30
  const summary = runSwarm(from, count, ticks, mutant, (result) => {
    done++
    const first = result.violations[0]
    if (first !== undefined) {
      console.log(`FAIL seed ${result.seed}: ${first.invariant} at tick ${first.tick}: ${first.detail}`)
      const clients = (overrides.clientCount === undefined ? "" : ` --clients=${overrides.clientCount}`) + (replicaCount === 1 ? "" : ` --replicas=${replicaCount}`)
      console.log(`  replay: npm run sim -- --seed=${result.seed} --ticks=${ticks}${mutant === "none" ? "" : ` --mutant=${mutant}`}${clients} --log=debug`)
    }
    if (done === count || done % Math.max(1, Math.floor(count / 20)) === 0) {
      const filled = Math.round((done / count) * barWidth)
      console.log(`[${"#".repeat(filled)}${".".repeat(barWidth - filled)}] ${done}/${count} seeds`)
    }
  }, overrides, replicaCount)
  const minutes = summary.elapsedMs / 60_000
  console.log("RESULT " + JSON.stringify({
    seeds: summary.seeds,
    failed: summary.failed.length,
    failing_seeds: summary.failed.map((f) => ({ seed: f.seed, invariant: f.invariant })),
    seeds_per_minute: Math.round(summary.seeds / minutes),
    ticks_per_second: Math.round(summary.ticks / (summary.elapsedMs / 1000)),
    ticks_per_seed: ticks,
    ...(replicaCount === 1 ? {} : { replica_count: replicaCount }),
    ...(mutant === "none" ? {} : { mutant })
  }))
  return summary.failed.length === 0 ? 0 : 1
}

if (import.meta.main) process.exitCode = main(process.argv.slice(2))
