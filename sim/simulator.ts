/**
 * One simulated run (simulation.md §1.2): the cluster is an array of replica processes
 * (sim/replica_process.ts), each the shipping replica (`layerReplica` over the real
 * `ReplicaCore`, journal and ledger) with its own simulated disk (src/layers/disk_sim.ts), clock,
 * bus endpoint on the network (sim/network.ts, a path between every pair of processes) and pause
 * state, all running as Effect fibers on the simulator's scheduler; so do its clients, the
 * shipping client sessions (sim/session_client.ts). The array holds `replicaCount` processes
 * (one unless asked: `--replicas=N`). A cluster runs in normal operation in view 0 only: its
 * runs have every network fault and pauses of any replica, but crash only backups (a restarted
 * primary needs the view change, the next issue), and end with a convergence check (every
 * replica reaches the same commit, backups by repair) instead of the final crash and recovery. A seed chooses the swarm parameters and every
 * fault; the checkers (sim/checker.ts, sim/checkpoint_checker.ts) judge the run from what the
 * clients see, what reaches the disk, and the events each replica emits (`ReplicaObserver`),
 * never from log lines.
 *
 * Each tick (10 ms): deliver every due packet and fire every due timer (disk completions, the
 * replicas' ticks, the sessions' retries and pings) in time order, running the fibers to
 * quiescence after each; then a cluster's network may be partitioned or heal (sim/partitions.ts)
 * and a minority of its replicas' wall clocks may jump (sim/clock_jumps.ts), each from its own
 * stream; then idle clients make calls; then maybe pause, crash or restart each replica in turn.
 * After `ticks` ticks the faults stop (liveness mode, §8.2): the network heals (partitions too),
 * crashed replicas restart, no new calls are made, and every outstanding call must complete
 * within `livenessTicksMax`. The run ends with one more crash and recovery of every replica,
 * which must keep every acknowledged op.
 */
import { Clock, Effect, Exit, Cause, Layer, Logger, Random as EffectRandom, References } from "effect"
import type { MessageBus } from "../src/actors/message_bus.ts"
import { quorums } from "../src/actors/quorum.ts"
import { layerReplica, Replica, type ReplicaEvent, ReplicaLedger, ReplicaObserver } from "../src/actors/replica.ts"
import { faultsNone, SimulatedDisk } from "../src/layers/disk_sim.ts"
import { sealReply, u128ToBytes } from "../src/protocol/build.ts"
import { Command, FrameLayout, PrepareLayout, readU32, ReplyLayout } from "../src/protocol/header.ts"
import { formatStorage } from "../src/storage/format.ts"
import { layoutOf, testConfig } from "../src/storage/layout.ts"
import { Storage } from "../src/storage/storage.ts"
import { Checker, readU64, type Violation } from "./checker.ts"
import { SimClient } from "./session_client.ts"
import { networkHealthy, SimBus, SimNetwork, type NetworkOptions } from "./network.ts"
import { Random, streamSeed } from "./random.ts"
import { SimClock, SimScheduler } from "./runtime.ts"
import { atReplica, Trace, TraceHash } from "./trace.ts"
import { Workload } from "./workload.ts"
import { type CoreMutant, coreMutants, withCoreMutant } from "./core_mutants.ts"
import { droppingLedger, driftingLedger, isLedgerInvariantBroken, rewritingLedger, verifyingLedger } from "./mutant_ledger.ts"
import { CheckpointChecker } from "./checkpoint_checker.ts"
import { CommitChecker, type ReplicaStatus } from "./commit_checker.ts"
import { type ClockJumps, drawClockJumps } from "./clock_jumps.ts"
import { Partitions } from "./partitions.ts"
import { ReplicaProcess } from "./replica_process.ts"
import { shadowCheckpoints } from "./storage_checker.ts"
import { createLedger, type Ledger } from "../src/ledger/ledger.ts"

export const tickMs = 10
/** Deliberately broken variants that the checkers must catch (test/sim/sim.test.ts). */
export type Mutant =
  | "none" | "ledger_drops_transfer" | "reply_cache_differs" | "reply_body_wrong" | "storage_acks_lost_writes" | "storage_skips_fsync"
  | "replies_lost_forever" | "ledger_drifts" | "checkpoint_rewrites_after_restart" | "checkpoint_events_lost"
  | "backup_ledger_drops_transfer" | CoreMutant
export const mutants: ReadonlyArray<Mutant> = [
  "none", "ledger_drops_transfer", "reply_cache_differs", "reply_body_wrong", "storage_acks_lost_writes", "storage_skips_fsync",
  "replies_lost_forever", "ledger_drifts", "checkpoint_rewrites_after_restart", "checkpoint_events_lost",
  // A cluster's backups (only) drop a transfer: they reply to nobody, so only their checkpoints can tell.
  "backup_ledger_drops_transfer",
  // A cluster's replication rules broken in the core itself (sim/core_mutants.ts).
  ...coreMutants
]

export interface SimOptions {
  readonly seed: bigint
  /** Ticks of the safety phase (faults active). */
  readonly ticks: number
  readonly log?: "quiet" | "info" | "debug"
  readonly mutant?: Mutant
  /** Overrides of drawn parameters (tests use these to force crashes). */
  readonly overrides?: Partial<SwarmParameters>
  /** Receives log lines (default: none). */
  readonly print?: (line: string) => void
  /** Receives the drawn parameters before the run starts. */
  readonly onParameters?: (parameters: SwarmParameters) => void
  /** Replicas in the cluster (default 1). */
  readonly replicaCount?: number
}

export interface SwarmParameters {
  readonly clientCount: number
  readonly network: NetworkOptions
  readonly diskReadLatencyMs: { readonly min: number; readonly mean: number }
  readonly diskWriteLatencyMs: { readonly min: number; readonly mean: number }
  readonly crashFaultProbability: number
  /** Per tick while up / down. */
  readonly crashProbability: number
  readonly restartProbability: number
  /** Ticks a replica stays up (down) at least before it may crash (restart). */
  readonly crashStability: number
  readonly restartStability: number
  /** Per tick while up and running / while paused (VM migration, long GC: simulation.md §5). */
  readonly pauseProbability: number
  readonly unpauseProbability: number
  /** The replica's wall-clock error model (simulation.md §4), amplitude in ms. */
  readonly clockModel: "ideal" | "linear_drift" | "periodic" | "step_jump"
  readonly clockAmplitudeMs: number
  readonly clockPeriodTicks: number
  /** Per tick per idle client, while the workload is "on". */
  readonly requestProbability: number
  readonly idleOnProbability: number
  readonly idleOffProbability: number
  /** Registers plus requests issued at most (the test profile checkpoints every 32 ops). */
  readonly requestsMax: number
  /** The sessions' first retransmission (their `requestTimeoutMs`; 60 ticks by default in production). */
  readonly requestTimeoutTicks: number
  readonly batchEventsMax: number
  readonly batchesMax: number
  readonly accountPool: number
  readonly oddProbability: number
  /** The sessions' `burstBytes` (0: the default, half a request): low values split a workload request's calls. */
  readonly burstBytes: number
}

export interface SimResult {
  readonly seed: string
  readonly traceHash: string
  readonly verdict: "ok" | "violation"
  readonly violations: ReadonlyArray<Violation>
  readonly parameters: SwarmParameters
  readonly ticksRun: number
  readonly stats: Record<string, number>
}

/**
 * Liveness mode must finish every outstanding request within this many ticks (120 s simulated).
 * The bound has to cover draining the backlog of a saturated run: up to 70 clients, each with
 * up to two requests (a low burst threshold sends the first calls of a burst and merges the rest
 * behind them), on the slowest disk drawn (two serial writes of ~300 ms per op, and checkpoints). Such
 * runs took up to 7,000 ticks (60 s had been enough for one request per client, barely).
 */
export const livenessTicksMax = 12000
/** Grid blocks of the simulated data file: far more than a run's checkpoints need. */
const gridBlocksSimulated = 2048
/** Ticks allowed for the final recovery. */
const recoveryTicksMax = 3000
/**
 * Ticks a cluster has, once the clients are done, for every backup to commit what the primary
 * did: a backup restarted at the end may repair a journal's worth of ops (64 in the test profile)
 * on the slowest disk drawn (two serial writes of ~300 ms per op) and store two checkpoints of a
 * few seconds each: about 45 s. The loop ends as soon as the replicas agree.
 */
const convergenceTicksMax = 6000
/** Ticks without a commit anywhere after which laggards beyond every journal's reach are taken as stuck. */
const stuckTicks = 1000
const epochMs = 1_700_000_000_000

export function drawParameters(seed: bigint): SwarmParameters {
  const r = Random.stream(seed, "swarm")
  const roll = r.below(100)
  const clientCount = roll < 60 ? r.between(1, 8) : roll < 90 ? r.between(9, 24) : r.between(65, 70)
  const delayMin = r.between(0, 30)
  return {
    clientCount,
    network: {
      delayMinMs: delayMin,
      delayMeanMs: delayMin + r.between(0, 70),
      lossProbability: r.chance(0.2) ? 0 : r.uniform(0, 0.3),
      replayProbability: r.chance(0.3) ? 0 : r.uniform(0, 0.5),
      corruptProbability: r.chance(0.5) ? 0 : r.uniform(0, 0.03),
      pathCapacity: r.between(2, 20),
      clogProbability: r.chance(0.5) ? 0 : r.uniform(0, 0.02),
      clogDurationMeanMs: r.between(0, 5000)
    },
    diskReadLatencyMs: (() => { const min = r.between(0, 10); return { min, mean: min + r.between(0, 20) } })(),
    diskWriteLatencyMs: (() => { const min = r.between(0, 30); return { min, mean: min + r.between(0, 300) } })(),
    crashFaultProbability: r.uniform(0.8, 1),
    crashProbability: r.chance(0.3) ? 0 : r.uniform(0, 0.0008),
    restartProbability: r.uniform(0.002, 0.02),
    crashStability: r.between(0, 1000),
    restartStability: r.between(0, 300),
    pauseProbability: r.chance(0.5) ? 0 : r.uniform(0, 0.0005),
    unpauseProbability: r.uniform(0.005, 0.05),
    clockModel: r.pick(["ideal", "ideal", "linear_drift", "periodic", "step_jump"] as const),
    clockAmplitudeMs: r.pick([1, 100, 2000, 30_000]) * (r.chance(0.5) ? -1 : 1),
    clockPeriodTicks: r.between(100, 5000),
    requestProbability: r.uniform(0.01, 1),
    idleOnProbability: r.uniform(0, 0.2),
    idleOffProbability: r.uniform(0.1, 0.2),
    requestsMax: 180,
    requestTimeoutTicks: r.between(10, 60),
    batchEventsMax: r.pick([1, 4, 16, 40]),
    batchesMax: r.pick([1, 1, 2, 3]),
    accountPool: r.between(4, 16),
    oddProbability: r.uniform(0, 0.1),
    // Drawn last, so the draws above are those of earlier versions for the same seed.
    burstBytes: r.pick([0, 0, 128, 512])
  }
}

/** The wall-clock offset model of simulation.md §4, as a function of monotonic milliseconds. */
function clockOffset(p: SwarmParameters): (nowMs: number) => number {
  const a = p.clockAmplitudeMs
  const periodMs = p.clockPeriodTicks * tickMs
  switch (p.clockModel) {
    case "ideal":
      return () => 0
    case "linear_drift":
      return (nowMs) => (a * nowMs) / (periodMs * 10)
    case "periodic":
      return (nowMs) => a * Math.sin((2 * Math.PI * nowMs) / periodMs)
    case "step_jump":
      return (nowMs) => (nowMs >= periodMs ? a : 0)
  }
}

/** The bound of each replica's own small clock skew (ms). */
const clockSkewSmallMs = 50

/** The replicas' own clock skews (ms), from their own stream so the other draws stay those of earlier versions. */
function clockSkews(seed: bigint, replicaCount: number): ReadonlyArray<number> {
  if (replicaCount === 1) return [0]
  const r = Random.stream(seed, "clock skews")
  const skews = Array.from({ length: replicaCount }, () => r.between(-clockSkewSmallMs, clockSkewSmallMs))
  if (replicaCount >= 3 && r.chance(0.2)) skews[r.below(replicaCount)] = (r.chance(0.5) ? -1 : 1) * 3_600_000
  return skews
}

type StatusChanged = Extract<ReplicaEvent, { _tag: "StatusChanged" }>
const statusCodes: Readonly<Record<ReplicaStatus["status"], number>> = { normal: 1, view_change: 2, recovering_head: 3 }

/** `at` if it is due by `now`. */
const due = (at: number | undefined, now: number): number | undefined => (at !== undefined && at <= now ? at : undefined)

/** Mutant: the event feed loses every `CheckpointStored` (the checkpoint checker must notice the silence). */
const cutCheckpointStored = (observe: (event: ReplicaEvent) => void) => (event: ReplicaEvent): void => {
  if (event._tag !== "CheckpointStored") observe(event)
}

export function runSimulation(options: SimOptions): SimResult {
  const mutant = options.mutant
  const core = coreMutants.find((name) => name === mutant)
  return withCoreMutant(core, () => new Simulation(options).run())
}

class Simulation {
  private readonly options: SimOptions
  private readonly seed: bigint
  readonly parameters: SwarmParameters
  private readonly trace = new TraceHash()
  private readonly checker = new Checker()
  private readonly scheduler = new SimScheduler()
  /** The clients' clock: it keeps time with the replicas', but runs while one is paused and has no wall-clock error. */
  private readonly clientClock: SimClock
  private readonly network: SimNetwork
  /** The cluster's replica processes, by index. */
  private readonly replicas: ReadonlyArray<ReplicaProcess>
  private readonly workload: Workload
  private readonly clients: Array<SimClient> = []
  private readonly faults: Random
  private readonly requestGate: Random
  private readonly cluster: bigint
  private readonly mutant: Mutant
  private readonly print: (line: string) => void
  private readonly debug: boolean
  private tick = 0
  private issued = 0
  private idle = false
  private faultsActive = true
  /** Retries and re-registrations of the clients replaced after an eviction. */
  private retiredRetries = 0
  private retiredReregistrations = 0
  private retiredBurstSteps = 0
  private readonly stats = { crashes: 0, restarts: 0, pauses: 0, evictions: 0, journalFull: 0, defects: 0 }
  /** Clock jumps that took effect (a cluster's: sim/clock_jumps.ts). */
  private clockJumpsDone = 0
  /** Replicas left further behind than a journal at the end (they need state sync: `convergence`). */
  private stateSyncNeeded = 0
  /** What the replicas report about their checkpoints (their events). */
  private readonly checkpoints = new CheckpointChecker(this.checker)
  private readonly replicaCount: number
  /**
   * Each replica's own wall-clock skew (ms): none for a replica of one (its clock is the cluster's);
   * in a cluster up to ±50 ms each, and in one run of five, from three replicas up, one replica an
   * hour off, which cluster time must outvote (vsr.md §8).
   */
  private readonly clockSkewsMs: ReadonlyArray<number>
  /** Steps of single replicas' wall clocks (a minority of a cluster's replicas, sim/clock_jumps.ts). */
  private readonly clockJumps: ClockJumps
  /** Partitions of a cluster's network (sim/partitions.ts). */
  private readonly partitions: Partitions
  /** The run's shared clock error (ms) at a monotonic time, and the furthest ahead it has put every clock so far. */
  private readonly sharedClockOffset: (nowMs: number) => number
  private sharedClockAheadMaxMs = 0
  /** The latest view change a new primary said waits for an op no replica that answered holds. */
  private stalledViewChange: { readonly view: number; readonly op: number } | undefined
  /** How many replicas were recovering_head (1 for a view change stalled on a lost op) when liveness could not be judged. */
  private livenessUnjudged = 0
  /** Every replica commits the same prepare at each op. */
  private readonly commits: CommitChecker
  /** Replies already sent per (client, request): the reply-cache mutant alters the repeats. */
  private readonly repliesSent = new Set<string>()

  constructor(options: SimOptions) {
    this.options = options
    this.seed = options.seed
    this.mutant = options.mutant ?? "none"
    this.print = options.print ?? (() => {})
    this.debug = options.log === "debug"
    this.replicaCount = options.replicaCount ?? 1
    this.clockSkewsMs = clockSkews(this.seed, this.replicaCount)
    const hourOff = this.clockSkewsMs.findIndex((skew) => Math.abs(skew) > clockSkewSmallMs)
    this.clockJumps = drawClockJumps(this.seed, this.replicaCount, options.ticks, hourOff === -1 ? undefined : hourOff)
    this.commits = new CommitChecker(this.checker, this.replicaCount)
    this.parameters = { ...drawParameters(options.seed), ...options.overrides }
    this.sharedClockOffset = clockOffset(this.parameters)
    const p = this.parameters
    const replicaCount = this.replicaCount
    this.clientClock = new SimClock(epochMs, (task) => this.scheduler.makeDispatcher().scheduleTask(task, 0))
    this.cluster = Random.stream(this.seed, "cluster").u64()
    this.network = new SimNetwork(this.seed, u128ToBytes(this.cluster), replicaCount, p.network, this.trace)
    this.replicas = Array.from({ length: replicaCount }, (_, index) => this.makeReplica(index))
    this.workload = new Workload(Random.stream(this.seed, "workload"), {
      accountPool: p.accountPool, batchEventsMax: p.batchEventsMax, batchesMax: p.batchesMax, oddProbability: p.oddProbability
    })
    this.faults = Random.stream(this.seed, "process faults")
    this.requestGate = Random.stream(this.seed, "request gate")
    for (let k = 0; k < p.clientCount; k++) this.addClient(k, 0)
    this.partitions = new Partitions({
      seed: this.seed, replicaCount, clientCount: p.clientCount, network: this.network, trace: this.trace,
      primary: () => this.knownPrimary(), log: (line) => this.log(line)
    })
  }

  run(): SimResult {
    this.options.onParameters?.(this.parameters)
    this.format()
    for (const replica of this.replicas) this.startReplica(replica)
    const progressEvery = Math.max(1, Math.floor(this.options.ticks / 4))
    for (this.tick = 1; this.tick <= this.options.ticks && this.checker.violations.length === 0; this.tick++) {
      this.step()
      if (this.tick % progressEvery === 0) this.progress()
    }
    this.liveness()
    if (this.replicaCount > 1) this.convergence()
    else if (this.checker.violations.length === 0) this.finalRecovery()
    this.stop()
    if (this.checker.violations.length === 0) this.checkStorageDeterminism()
    return this.result()
  }

  /**
   * Whether too many replicas restarted with a damaged journal head to form a view-change quorum:
   * they wait, by design, for a view nobody can start (vsr.md §6.2; TigerBeetle's simulator does
   * not judge this either). Safety was checked all along; the run counts them (`livenessUnjudged`).
   */
  private viewChangeQuorumLost(): boolean {
    const recoveringHead = this.replicas.filter((replica) => this.commits.status(replica.index)?.status === "recovering_head").length
    // Or a view change waits for an op nobody committed that no replica it heard from holds (TigerBeetle's `core_missing_prepare`).
    const stalled = this.stalledViewChange !== undefined && this.stalledViewChange.op > Math.max(...this.commits.commits)
    if (this.replicaCount - recoveringHead >= quorums(this.replicaCount).viewChange && !stalled) return false
    this.livenessUnjudged = Math.max(1, recoveringHead)
    return true
  }

  /** Liveness mode (§8.2): the faults stop, and every outstanding request must complete. */
  private liveness(): void {
    this.faultsActive = false
    this.partitions.stop(this.tick)
    this.network.options = networkHealthy
    this.network.unclog()
    const livenessStart = this.tick
    for (; this.checker.violations.length === 0 && this.tick < livenessStart + livenessTicksMax; this.tick++) {
      this.step()
      if (this.replicas.every((r) => r.state._tag === "Up") && this.clients.every((c) => c.idle || c.evicted)) return
    }
    if (this.checker.violations.length > 0) return
    const pending = this.clients.filter((c) => !c.idle && !c.evicted).length
    if (this.viewChangeQuorumLost()) return this.log(`${pending} requests outstanding: replicas recovering_head, or a view change waiting for a lost op (not judged)`)
    this.checker.fail("liveness", `${pending} requests still outstanding ${livenessTicksMax} ticks after faults stopped ` +
      `(${this.replicaStates()}, ${this.stats.journalFull > 0 ? "the journal was full" : "journal not full"})`)
  }

  /**
   * A cluster, its clients done: every backup must reach the primary's commit (they learn it from
   * heartbeats). A replica further behind the furthest than a journal holds cannot: every peer
   * has overwritten the prepares it needs, and it waits for state sync (issue 16), which the
   * replica does not have yet. A run whose only laggards are such replicas is not judged on
   * convergence (simulation.md §8.2: damage outside what the system can repair yet); it counts
   * them (`stateSyncNeeded`), and what they committed was checked alike all along.
   */
  private convergence(): void {
    const start = this.tick
    // Replicas stuck beyond reach end the wait early, once no commit has moved for a while.
    let commits = this.commits.commits.join()
    let movedAt = start
    for (; this.checker.violations.length === 0 && !this.commits.converged && this.tick < start + convergenceTicksMax; this.tick++) {
      if (this.commits.commits.join() !== commits) [commits, movedAt] = [this.commits.commits.join(), this.tick]
      if (this.tick - movedAt >= stuckTicks && this.laggardsBeyondReach() > 0) break
      this.step()
    }
    if (this.checker.violations.length > 0 || this.commits.converged) return
    if (this.viewChangeQuorumLost()) return this.log(`commits [${this.commits.commits.join(", ")}]: replicas recovering_head, or a view change waiting for a lost op (not judged)`)
    const beyondReach = this.laggardsBeyondReach()
    if (beyondReach > 0) {
      this.stateSyncNeeded = beyondReach
      this.log(`commits [${this.commits.commits.join(", ")}]: ${beyondReach} replicas further behind than a journal need state sync (not judged)`)
      return
    }
    this.checker.fail("replicas_converge", `commits [${this.commits.commits.join(", ")}] ${convergenceTicksMax} ticks after the clients were done`)
  }

  /** How many replicas are behind the furthest commit, if every one of them is further behind than a journal holds (else 0). */
  private laggardsBeyondReach(): number {
    const commits = this.commits.commits
    const furthest = Math.max(...commits)
    const behind = commits.filter((commit) => commit < furthest)
    const slots = layoutOf(testConfig).config.journalSlotCount
    return behind.length > 0 && behind.every((commit) => commit + slots < furthest) ? behind.length : 0
  }

  private result(): SimResult {
    const violations = this.checker.violations
    const disks = (count: (disk: SimulatedDisk) => number) => this.replicas.reduce((sum, r) => sum + count(r.disk), 0)
    return {
      seed: this.seed.toString(),
      traceHash: this.trace.hex(),
      verdict: violations.length === 0 ? "ok" : "violation",
      violations,
      parameters: this.parameters,
      ticksRun: this.tick,
      stats: {
        ...this.stats,
        checkpoints: this.checkpoints.stored,
        checkpointsCompared: this.checkpoints.compared,
        ...(this.replicaCount > 1 ? { commitsCompared: this.commits.compared, ...this.partitions.stats, clockJumps: this.clockJumpsDone, stateSyncNeeded: this.stateSyncNeeded, livenessUnjudged: this.livenessUnjudged } : {}),
        requestsIssued: this.issued,
        repliesChecked: this.checker.repliesChecked,
        opsChecked: this.checker.opsChecked,
        ackedOp: Number(this.checker.ackedOp),
        retries: this.clients.reduce((sum, c) => sum + c.retriesSent, this.retiredRetries),
        reregistrations: this.clients.reduce((sum, c) => sum + c.reregistrations, this.retiredReregistrations),
        burstSteps: this.clients.reduce((sum, c) => sum + c.burstSteps, this.retiredBurstSteps),
        ...this.network.stats,
        tornWrites: disks((disk) => disk.stats.tornWrites),
        diskWrites: disks((disk) => disk.stats.writes),
        traceEvents: this.trace.events,
        tasks: this.scheduler.tasksRun
      }
    }
  }

  /** One tick of simulation.md §1.2. */
  private step(): void {
    this.checker.tick = this.tick
    const now = this.tick * tickMs
    this.sharedClockAheadMaxMs = Math.max(this.sharedClockAheadMaxMs, this.sharedClockOffset(now))
    this.drain(now)
    this.network.tick(now, tickMs)
    if (this.faultsActive) {
      this.partitions.tick(this.tick)
      this.traceClockJumps()
      this.issueRequests()
    }
    this.scheduler.runUntilQuiescent()
    this.replaceEvicted()
    for (const replica of this.replicas) this.watchProcess(replica)
    this.processFaults()
    this.scheduler.runUntilQuiescent()
  }

  /**
   * Delivers due packets and fires due timers, in time order (ties: packets, then the replicas'
   * timers by index, then the clients'), to quiescence after each.
   */
  private drain(now: number): void {
    this.scheduler.runUntilQuiescent()
    for (;;) {
      const packetAt = this.network.nextReady(now)
      // A paused replica's timers (its ticks, its disk's completions) wait until it resumes.
      let replicaAt: number | undefined
      let replicaNext: ReplicaProcess | undefined
      for (const replica of this.replicas) {
        const at = replica.timerDue(now)
        if (at !== undefined && (replicaAt === undefined || at < replicaAt)) [replicaAt, replicaNext] = [at, replica]
      }
      const clientAt = due(this.clientClock.nextAt(), now)
      const at = Math.min(packetAt ?? Infinity, replicaAt ?? Infinity, clientAt ?? Infinity)
      if (at === Infinity) break
      this.advanceClocks(at)
      if (at === packetAt) this.network.step(now)
      else if (at === replicaAt) replicaNext!.clock.fireNext(now)
      else this.clientClock.fireNext(now)
      this.scheduler.runUntilQuiescent()
    }
    this.advanceClocks(now)
  }

  /** The clock jumps that took effect by this tick (the clocks read them from `clockJumps` themselves). */
  private traceClockJumps(): void {
    for (const jump of this.clockJumps.due(this.tick)) {
      this.clockJumpsDone++
      this.trace.add(atReplica(Trace.clockJump, jump.replica), jump.tick, jump.offsetMs)
      this.log(`replica ${jump.replica}'s wall clock jumps to ${jump.offsetMs} ms off`)
    }
  }

  /**
   * The primary as the replicas report it: that of the newest view a replica in normal status
   * names (replica 0 until the core reports views).
   */
  private knownPrimary(): number {
    let best: ReplicaStatus | undefined
    for (const replica of this.replicas) {
      const status = this.commits.status(replica.index)
      if (replica.state._tag === "Up" && status?.status === "normal" && (best === undefined || status.view > best.view)) best = status
    }
    return best?.primary ?? 0
  }

  /** Monotonic time is one for every process: a paused replica's clock advances too (simulation.md §5). */
  private advanceClocks(at: number): void {
    for (const replica of this.replicas) replica.clock.advanceTo(at)
    this.clientClock.advanceTo(at)
  }

  /**
   * Spreads the op budget over the safety phase, so that crashes, pauses and faults meet a busy
   * replica throughout rather than only in the first few hundred ticks.
   */
  private get pace(): number {
    return Math.min(1, (3 * this.parameters.requestsMax) / (this.options.ticks * this.parameters.clientCount))
  }

  /** Idle clients start their session (its register) or make the calls of one workload request. */
  private issueRequests(): void {
    const p = this.parameters
    const gate = this.requestGate
    this.idle = this.idle ? !gate.chance(p.idleOffProbability) : gate.chance(p.idleOnProbability / 10)
    for (const client of this.clients) {
      if (!client.idle) continue
      if (!client.started) {
        if (this.issued >= p.requestsMax) continue
        this.issued++
        client.start()
        continue
      }
      if (this.idle || this.issued >= p.requestsMax || !gate.chance(p.requestProbability * this.pace)) continue
      const request = this.workload.next()
      // The calls are made together on an idle session, which sends them as one multi-batch
      // request, or two when its burst threshold is low: the budget counts requests, that is ops.
      this.issued += request.batches.length === 1 ? 1 : 2
      client.issue(request)
    }
  }

  /** An evicted client is gone for good; its session ends, and a new client (new id) takes its place (§6). */
  private replaceEvicted(): void {
    for (let k = 0; k < this.clients.length; k++) {
      const client = this.clients[k]!
      if (!client.evicted) continue
      this.stats.evictions++
      this.retiredRetries += client.retriesSent
      this.retiredReregistrations += client.reregistrations
      this.retiredBurstSteps += client.burstSteps
      client.stop()
      if (this.faultsActive && this.issued < this.parameters.requestsMax) this.addClient(client.index, this.stats.evictions)
      else this.clients.splice(k--, 1)
    }
  }

  /** The client of slot `index`, not started yet (the simulator starts it when it is due to register). */
  private addClient(index: number, incarnation: number): void {
    if (incarnation === 0) {
      this.network.addClient({
        onMessage: (connection: number, bytes: Uint8Array) => this.clientAt(index)?.transport.onMessage(connection, bytes),
        onClosed: (connection: number) => this.clientAt(index)?.transport.onClosed(connection)
      })
    }
    const client = new SimClient({
      index, seed: this.seed, randomName: `client ${index} incarnation ${incarnation}`, cluster: this.cluster,
      requestTimeoutMs: this.parameters.requestTimeoutTicks * tickMs,
      ...(this.parameters.burstBytes === 0 ? {} : { burstBytes: this.parameters.burstBytes }),
      network: this.network, clock: this.clientClock, scheduler: this.scheduler, checker: this.checker, trace: this.trace,
      log: this.debug ? (line: string) => this.log(line) : undefined
    })
    if (incarnation === 0) this.clients.push(client)
    else this.clients[this.clients.findIndex((c) => c.index === index)] = client
  }

  private clientAt(index: number): SimClient | undefined {
    return this.clients.find((c) => c.index === index)
  }

  // --- the replica processes ------------------------------------------------------------------

  /**
   * Replica `index`'s process: its own data file, and a clock with the run's wall-clock error
   * model; in a cluster each clock is also skewed on its own (`clockSkewsMs`), and a minority of
   * the clocks may jump (`clockJumps`).
   */
  private makeReplica(index: number): ReplicaProcess {
    const p = this.parameters
    const layout = layoutOf(testConfig)
    const disk = new SimulatedDisk({
      seed: Random.stream(this.seed, `disk ${index}`).below(2 ** 31),
      sizeBytes: layout.dataFileSizeMin + gridBlocksSimulated * layout.config.blockSize,
      path: `replica-${index}.sim`,
      readLatencyMs: p.diskReadLatencyMs,
      writeLatencyMs: p.diskWriteLatencyMs,
      // One replica has no peer to repair from: only crash tears (simulation.md §3, fault atlas).
      faults: { ...faultsNone, crashFaultProbability: p.crashFaultProbability }
    })
    const offset = this.sharedClockOffset
    const skew = this.clockSkewsMs[index]!
    const jumps = this.clockJumps
    const clock = new SimClock(epochMs, (task) => this.scheduler.makeDispatcher().scheduleTask(task, 0),
      (nowMs) => offset(nowMs) + skew + jumps.offsetMs(index, nowMs, tickMs))
    return new ReplicaProcess({ index, disk, clock, network: this.network, scheduler: this.scheduler, tickMs })
  }

  /** `scarab format` on every replica's simulated disk (before the first start; no faults yet), then one time for all. */
  private format(): void {
    for (const replica of this.replicas) {
      const program = formatStorage({ cluster: this.cluster, replica: replica.index, replicaCount: this.replicaCount, profile: "test" }).pipe(
        Effect.provide(replica.disk.layer()), Effect.provideService(Clock.Clock, replica.clock))
      const fiber = Effect.runFork(program, { scheduler: this.scheduler })
      while (fiber.pollUnsafe() === undefined) {
        this.scheduler.runUntilQuiescent()
        if (fiber.pollUnsafe() !== undefined) break
        if (!replica.clock.fireNext(Number.MAX_SAFE_INTEGER)) break
      }
      const exit = fiber.pollUnsafe()
      if (exit === undefined || Exit.isFailure(exit)) throw new Error(`sim: format of replica ${replica.index} failed: ${exit === undefined ? "stuck" : Cause.pretty(exit.cause)}`)
    }
    this.advanceClocks(Math.max(...this.replicas.map((r) => r.clock.now)))
  }

  private startReplica(replica: ReplicaProcess): void {
    const storage = this.storageLayer(replica)
    const bus = SimBus.layer(this.network, replica.index, () => replica.clock.now, (b) => {
      replica.bus = b
      this.wrapBus(b)
    })
    replica.start(this.tick, (incarnation) => this.replicaProgram(replica, incarnation, Layer.merge(storage, bus)))
    this.trace.add(atReplica(Trace.restart, replica.index), this.tick)
    this.scheduler.runUntilQuiescent()
  }

  /**
   * One incarnation of a replica process: the shipping replica on its disk and bus. What it
   * reports (events; log lines in debug mode) counts while it is the running incarnation.
   */
  private replicaProgram(replica: ReplicaProcess, incarnation: number, io: Layer.Layer<Storage | MessageBus>): Effect.Effect<never, unknown> {
    const simulation = this
    const logger = Logger.make<unknown, void>(({ message, logLevel, cause }) => {
      if (replica.isCurrent(incarnation)) this.onLog(replica, logLevel, message, cause)
    })
    const observe = (event: ReplicaEvent) => {
      if (replica.isCurrent(incarnation)) this.onEvent(replica, event)
    }
    return Effect.gen(function* () {
      const running = yield* Replica
      const commitOp = yield* running.commitOp
      const checkpointOp = yield* running.checkpointOp
      simulation.onUp(replica, BigInt(commitOp), checkpointOp)
      return yield* Effect.never
    }).pipe(
      Effect.provide(layerReplica.pipe(Layer.provide(io))),
      Effect.provideService(ReplicaLedger, this.ledgerFactory(replica.index)),
      Effect.provideService(ReplicaObserver, this.mutant === "checkpoint_events_lost" ? cutCheckpointStored(observe) : observe),
      Effect.provideService(Clock.Clock, replica.clock),
      // The replica's nonce (its core's PRNG seed) comes from Random: seeded per replica and incarnation.
      EffectRandom.withSeed(String(streamSeed(this.seed, `replica ${replica.index} incarnation ${incarnation}`))),
      Effect.provideService(References.CurrentLoggers, new Set(this.debug ? [logger] : [])),
      Effect.provideService(References.MinimumLogLevel, this.debug ? "Debug" : "None")
    )
  }

  private onUp(replica: ReplicaProcess, commitOp: bigint, checkpointOp: number): void {
    if (!replica.up(this.tick)) return
    // One replica must itself recover every acknowledged op; a replica of a cluster may start
    // behind its peers (and catches up from them), so it truncates nothing from the history.
    if (this.replicaCount === 1) this.checker.onRecovered(commitOp)
    this.checkpoints.onRecovered(replica.index, checkpointOp)
    this.commits.onRecovered(replica.index, Number(commitOp))
    this.trace.add(atReplica(Trace.restart, replica.index), this.tick, Number(commitOp))
    this.log(`replica ${replica.index} up: recovered commit op ${commitOp}, checkpoint op ${checkpointOp} (acknowledged ${this.checker.ackedOp})`)
  }

  private setPaused(replica: ReplicaProcess, paused: boolean): void {
    if (!replica.setPaused(paused)) return
    if (paused) this.stats.pauses++
    this.trace.add(atReplica(Trace.pause, replica.index), this.tick, paused ? 1 : 0)
    this.log(`replica ${replica.index} ${paused ? "paused" : "resumed"}`)
  }

  private crashReplica(replica: ReplicaProcess): void {
    this.setPaused(replica, false)
    if (replica.state._tag === "Down") return
    this.checkpoints.onDied(replica.index)
    this.commits.onStatusUnknown(replica.index)
    this.commits.onCrashed(replica.index)
    const torn = replica.crash(this.tick)
    if (torn !== undefined && torn > 0) this.log(`disk ${replica.index}: ${torn} writes in flight torn by the crash`)
    this.stats.crashes++
    this.trace.add(atReplica(Trace.crash, replica.index), this.tick)
    this.log(`replica ${replica.index} crashed (acknowledged op ${this.checker.ackedOp})`)
    this.scheduler.runUntilQuiescent()
  }

  /** A replica fiber that ended on its own failed to open (recovery refused, storage error). */
  private watchProcess(replica: ReplicaProcess): void {
    const exit = replica.exited()
    if (exit === undefined) return
    const reason = Exit.isFailure(exit) ? Cause.pretty(exit.cause).split("\n")[0]! : "exited"
    const refused = /WAL recovery refused at op (\d+)/.exec(reason)
    if (refused !== null && BigInt(refused[1]!) > this.checker.ackedOp) {
      // A refusal above the acknowledged op names an availability bug rather than data loss
      // (journal writes are ordered precisely so that it cannot happen).
      this.checker.fail("recovery_refuses_unacknowledged_hole", `${reason} (acknowledged op ${this.checker.ackedOp}: nothing acknowledged was lost)`)
    } else {
      this.checker.fail("replica_restarts", `replica ${replica.index}'s process stopped: ${reason}`)
    }
    this.checkpoints.onDied(replica.index)
    this.commits.onStatusUnknown(replica.index)
    replica.ended(this.tick)
  }

  /** Per tick, for each replica in turn: pause or resume, crash or restart (simulation.md §5). */
  private processFaults(): void {
    const p = this.parameters
    for (const replica of this.replicas) {
      const state = replica.state
      if (!this.faultsActive) {
        this.setPaused(replica, false)
        if (state._tag === "Down") this.restartReplica(replica)
        continue
      }
      if (state._tag !== "Down" && this.faults.chance(replica.paused ? p.unpauseProbability : p.pauseProbability)) {
        this.setPaused(replica, !replica.paused)
      } else if (state._tag === "Up" && this.tick - state.since >= p.crashStability && this.faults.chance(p.crashProbability)) {
        this.crashReplica(replica)
      } else if (state._tag === "Down" && this.tick - state.since >= p.restartStability && this.faults.chance(p.restartProbability)) {
        this.restartReplica(replica)
      }
    }
  }

  private restartReplica(replica: ReplicaProcess): void {
    this.stats.restarts++
    this.startReplica(replica)
  }

  /** The end of the run: one more crash of every replica, and the recovery must keep every acknowledged op. */
  private finalRecovery(): void {
    for (const replica of this.replicas) {
      this.crashReplica(replica)
      this.restartReplica(replica)
    }
    const start = this.tick
    const starting = () => this.replicas.some((r) => r.state._tag === "Starting")
    while (starting() && this.tick < start + recoveryTicksMax && this.checker.violations.length === 0) {
      this.tick++
      this.drain(this.tick * tickMs)
      for (const replica of this.replicas) this.watchProcess(replica)
    }
    if (this.replicas.some((r) => r.state._tag !== "Up") && this.checker.violations.length === 0) {
      this.checker.fail("replica_restarts", `the final recovery did not finish (${this.replicaStates()})`)
    }
  }

  private stop(): void {
    for (const client of this.clients) client.stop()
    this.scheduler.runUntilQuiescent()
    for (const replica of this.replicas) replica.stop(this.tick)
    // Let the dead processes' uninterruptible I/O finish so their fibers end.
    const fireNext = () => this.replicas.some((r) => r.clock.fireNext(Number.MAX_SAFE_INTEGER))
    for (let i = 0; i < 100_000 && (this.scheduler.runUntilQuiescent() > 0 || fireNext()); i++) { /* drain */ }
  }

  /** The disk as the replica sees it: traced, observed by the checker, and possibly broken. */
  private storageLayer(replica: ReplicaProcess): Layer.Layer<Storage> {
    const simulation = this
    return Layer.effect(Storage, Effect.gen(function* () {
      const inner = yield* Storage
      const cluster = simulation.replicaCount > 1
      const restarts = simulation.stats.restarts
      const lossy = Random.stream(simulation.seed, replica.index === 0 ? `mutant storage ${restarts}` : `mutant storage ${restarts} replica ${replica.index}`)
      return Storage.of({
        implementation: inner.implementation,
        path: inner.path,
        directIo: inner.directIo,
        inFlightMax: inner.inFlightMax,
        allocate: (size) => inner.allocate(size),
        read: (zone, offset, buffer) => inner.read(zone, offset, buffer).pipe(Effect.tap(() => Effect.sync(() => {
          simulation.trace.add(atReplica(Trace.diskRead, replica.index), zone.start + offset, buffer.length)
        }))),
        write: (zone, offset, buffer) => {
          const wal = zone.name === "wal_prepares"
          const done = Effect.sync(() => {
            simulation.trace.add(atReplica(Trace.diskWrite, replica.index), zone.start + offset, buffer.length)
            if (wal) {
              const prepare = buffer.subarray(0, readU32(buffer, FrameLayout.size.offset))
              // A replica of one: its writes are the history; a cluster's history is what it commits.
              if (cluster) simulation.commits.onPrepareWritten(replica.index, offset, prepare)
              else simulation.checker.onPrepareWritten(prepare)
              if (simulation.debug) simulation.log(`disk ${replica.index}: journal write of op ${readU64(prepare, PrepareLayout.op.offset)} done (operation ${prepare[PrepareLayout.operation.offset]})`)
            }
          })
          // Mutant: a disk that acknowledges a WAL write it never made durable.
          if (wal && simulation.mutant === "storage_acks_lost_writes" && lossy.chance(0.3)) return Effect.andThen(Effect.yieldNow, done)
          // Mutant: a disk that acknowledges a write at once and makes it durable later (a
          // skipped fsync): a crash in between loses writes the replica already acted on.
          if (wal && simulation.mutant === "storage_skips_fsync") {
            return Effect.andThen(Effect.forkDetach(Effect.ignore(inner.write(zone, offset, buffer))), done)
          }
          // In a cluster, the prepare the slot held stops counting as durable once a write of another starts.
          if (wal && cluster) {
            const started = Effect.sync(() => simulation.commits.onWriteStarted(replica.index, offset, buffer.subarray(0, readU32(buffer, FrameLayout.size.offset))))
            return Effect.andThen(started, Effect.andThen(inner.write(zone, offset, buffer), done))
          }
          return Effect.andThen(inner.write(zone, offset, buffer), done)
        },
        sync: inner.sync,
        sizeBytes: inner.sizeBytes
      })
    })).pipe(Layer.provide(replica.disk.layer()))
  }

  /** Reply-path mutants: they alter what the replica sends, as a broken reply cache or ledger would. */
  private wrapBus(bus: SimBus): void {
    bus.observe = (message, toReplica) => {
      const command = message[FrameLayout.command.offset]
      // A reply to a peer's get_reply is a stored reply, not an answer to a client.
      if (command === Command.reply && !toReplica) this.checker.onReplySent(message)
    }
    if (this.mutant === "replies_lost_forever") {
      // Mutant: a replica that never answers some clients' requests (after registration): only
      // the liveness checker can notice.
      bus.transform = (message) =>
        message[FrameLayout.command.offset] === Command.reply && readU32(message, ReplyLayout.request.offset) >= 2 &&
          (message[ReplyLayout.client.offset]! & 1) === 0 ? undefined : message
      return
    }
    if (this.mutant !== "reply_cache_differs" && this.mutant !== "reply_body_wrong") return
    const mutant = this.mutant
    const sent = this.repliesSent
    bus.transform = (message) => {
      if (message[FrameLayout.command.offset] !== Command.reply || message.length <= 256 + 16) return message
      const key = `${readU64(message, ReplyLayout.client.offset)}/${readU32(message, ReplyLayout.request.offset)}`
      const again = sent.has(key)
      sent.add(key)
      if (mutant === "reply_cache_differs" ? !again : again) return message
      if (message[ReplyLayout.operation.offset]! < 140) return message
      const altered = message.slice()
      altered[256] = altered[256]! ^ 1
      sealReply(altered)
      return altered
    }
  }

  /** The replica's log lines: printed in debug mode, read by nothing (the checkers read events). */
  private onLog(replica: ReplicaProcess, level: string, message: unknown, cause: Cause.Cause<unknown>): void {
    let text = Array.isArray(message) ? message.map((m) => (Cause.isCause(m) ? Cause.pretty(m).split("\n")[0]! : String(m))).join(" ") : String(message)
    if (cause.reasons.length > 0) text += ": " + Cause.pretty(cause).split("\n")[0]!
    this.log(`replica ${replica.index} ${level}: ${text}`)
  }

  /** What the running incarnation of `replica` reports (src/actors/replica.ts, ReplicaEvent). */
  private onEvent(replica: ReplicaProcess, event: ReplicaEvent): void {
    switch (event._tag) {
      case "StatusChanged":
        return this.onStatusChanged(replica, event)
      case "ViewChangeStalled":
        this.stalledViewChange = { view: event.view, op: event.op }
        return this.log(`replica ${replica.index}: the change to view ${event.view} waits for op ${event.op}, which no replica that answered holds`)
      case "CheckpointData":
        return this.checkpoints.onRequested(replica.index, event.op)
      case "CheckpointSuperblock":
        return this.checkpoints.onSuperblock(replica.index, event.op)
      case "CheckpointStored":
        return this.checkpoints.onStored(replica.index, event.checkpoint.op, Buffer.from(event.checkpoint.id).toString("hex"))
      case "CheckpointRestored":
        // Replay commits again from the op after the checkpoint.
        this.commits.onRecovered(replica.index, event.checkpoint.op)
        return this.checkpoints.onRestored(replica.index, event.checkpoint.op, Buffer.from(event.checkpoint.id).toString("hex"))
      case "JournalFull":
        this.stats.journalFull++
        return
      case "JournalWrite":
        // Prepares carry cluster time: checked on their maker's own writes (see checkPrepareTime).
        if (this.replicaCount > 1 && event.prepare[FrameLayout.replica.offset] === replica.index) {
          this.checkPrepareTime(replica.index, event.op, readU64(event.prepare, PrepareLayout.timestamp.offset))
        }
        return
      case "Committed":
        return this.commits.onCommitted(replica.index, event.op, event.checksum, event.timestamp)
      case "Stopped": {
        // The replica's loop died of a defect: a broken invariant, the verifying ledger's included.
        this.stats.defects++
        const text = `replica ${replica.index} stopped: ${Cause.pretty(event.cause).split("\n")[0]!}`
        this.log(text)
        return this.checker.fail(isLedgerInvariantBroken(event.cause) ? "ledger_invariants" : "replica_defect", text)
      }
      default:
        return
    }
  }

  /** The core reports its status (the `StatusChanged` output): the commit checker judges commits by it. */
  private onStatusChanged(replica: ReplicaProcess, event: StatusChanged): void {
    // A view started since the stall: it was overcome.
    if (event.status === "normal" && this.stalledViewChange !== undefined && event.view >= this.stalledViewChange.view) this.stalledViewChange = undefined
    this.commits.onStatus(replica.index, { status: event.status, view: event.view, primary: event.primary })
    // Traced in a cluster only: a replica of one reports its status too, and its runs hash as before.
    if (this.replicaCount > 1) this.trace.add(atReplica(Trace.status, replica.index), this.tick, statusCodes[event.status], event.view, event.primary)
    this.log(`replica ${replica.index} is ${event.status} in view ${event.view} (primary ${event.primary})`)
  }

  /**
   * Cluster time (vsr.md §8): a prepare's timestamp is never ahead of the true time by more than
   * the furthest the run's shared clock error has yet put every clock ahead (all clocks move
   * together by it, so no agreement can see it), plus the replicas' own small skews and the
   * tolerance of 10 s. Timestamps never go back, so clocks that later fall behind (a swing, a
   * drift backwards) leave them ahead of the clocks, never of this bound. A primary stamping with
   * a clock an hour ahead of the others' breaks it.
   *
   * Clocks that jump (sim/clock_jumps.ts) are a minority together with the one an hour off, so
   * fewer than a replication quorum: every agreement holds a good clock, and the bound needs no
   * term for them.
   *
   * Checked on every journal write of a prepare by the replica that made it (the header's
   * `replica` is the writer): a primary journals each prepare as it makes it, so each prepare is
   * checked at the moment it was stamped, whatever the view. The same replica may write one of
   * its own prepares again later (repairing its log after a restart, say); the bound only grows
   * with time, so such a write passes whenever the first did, and there is no need to tell a new
   * op from an old one. A backup's writes of another replica's prepares would only be looser
   * checks of the same timestamps.
   */
  private checkPrepareTime(replica: number, op: number, timestamp: bigint): void {
    const nowMs = this.replicas[replica]!.clock.now
    const boundMs = epochMs + nowMs + Math.max(0, this.sharedClockAheadMaxMs) + clockSkewSmallMs + 11_000
    if (timestamp > BigInt(Math.ceil(boundMs)) * 1_000_000n) {
      this.checker.fail("prepare_follows_cluster_time", `replica ${replica}'s op ${op} was stamped ${timestamp / 1_000_000n} ms, ahead of the true time ` +
        `${epochMs + nowMs} ms by more than the shared clock error (${Math.round(this.sharedClockAheadMaxMs)} ms at most so far) and the tolerance`)
    }
  }

  /** The replica's ledger: verified after every request, and broken on purpose for some mutants. */
  private ledgerFactory(replica: number): () => Ledger {
    const make = this.mutant === "ledger_drops_transfer" || (this.mutant === "backup_ledger_drops_transfer" && replica > 0) ? droppingLedger
      : this.mutant === "ledger_drifts" ? driftingLedger
      : this.mutant === "checkpoint_rewrites_after_restart" ? rewritingLedger
      : () => createLedger()
    return () => verifyingLedger(make())
  }

  /**
   * Storage determinism (sim/storage_checker.ts): a replica that never crashed, fed the committed
   * ops, stores the same checkpoints as the replicas did through their crashes and restarts.
   */
  private checkStorageDeterminism(): void {
    const newest = this.checkpoints.newest
    if (newest === 0) return
    const prepares = this.checker.committedPrepares(BigInt(newest))
    if (prepares === undefined) return this.checker.fail("storage_determinism", `the history lacks a committed op up to checkpoint ${newest}`)
    const first = this.replicas[0]!
    const shadow = shadowCheckpoints(prepares, this.cluster, this.ledgerFactory(first.index), first.disk.sizeBytes, first.clock, this.scheduler)
    if (shadow.diverged !== undefined) return this.checker.fail("storage_determinism", `a replica that never crashed stops: ${shadow.diverged}`)
    this.checkpoints.compare(shadow.ids)
  }

  private log(line: string): void {
    if (this.options.log === "quiet") return
    if (!this.debug && !/^replica \d+ (crashed|up)/.test(line)) return
    this.print(`[tick ${this.tick}] ${line}`)
  }

  private progress(): void {
    if (this.options.log === "quiet") return
    this.print(`progress: tick ${this.tick}/${this.options.ticks}, requests ${this.issued}, acknowledged op ${this.checker.ackedOp}, ` +
      `replies checked ${this.checker.repliesChecked}, crashes ${this.stats.crashes}, ${this.replicaStates()}`)
  }

  /** `replica 0 Up, replica 1 Down`: for progress lines and reports. */
  private replicaStates(): string {
    return this.replicas.map((r) => `replica ${r.index} ${r.state._tag}${r.paused ? " (paused)" : ""}`).join(", ")
  }
}

