/**
 * One simulated run (simulation.md §1.2): the shipping replica (`layerReplica` over the real
 * `ReplicaCore`, journal and ledger) runs as Effect fibers on the simulator's scheduler and
 * clock, over the simulated disk (src/layers/disk_sim.ts) and network (sim/network.ts), and so
 * do its clients, the shipping client sessions (sim/session_client.ts). A seed chooses the swarm
 * parameters and every fault; the checkers (sim/checker.ts) judge the run.
 *
 * Each tick (10 ms): deliver every due packet and fire every due timer (disk completions, the
 * replica's tick, the sessions' retries and pings) in time order, running the fibers to
 * quiescence after each; then idle clients make calls; then maybe crash or restart the replica.
 * After `ticks` ticks the faults stop (liveness mode, §8.2): the network heals, a crashed replica
 * restarts, no new calls are made, and every outstanding call must complete within
 * `livenessTicksMax`. The run ends with one more crash and recovery, which must keep every
 * acknowledged op.
 */
import { Clock, Effect, Exit, Cause, Fiber, Layer, Logger, References } from "effect"
import { layerReplica, Replica, ReplicaLedger } from "../src/actors/replica.ts"
import { faultsNone, SimulatedDisk } from "../src/layers/disk_sim.ts"
import { sealReply, u128ToBytes } from "../src/protocol/build.ts"
import { Command, FrameLayout, PrepareLayout, readU32, ReplyLayout } from "../src/protocol/header.ts"
import { formatStorage } from "../src/storage/format.ts"
import { layoutOf, testConfig } from "../src/storage/layout.ts"
import { Storage } from "../src/storage/storage.ts"
import { Checker, readU64, type Violation } from "./checker.ts"
import { SimClient } from "./session_client.ts"
import { networkHealthy, SimBus, SimNetwork, type NetworkOptions } from "./network.ts"
import { Random } from "./random.ts"
import { SimClock, SimScheduler } from "./runtime.ts"
import { Trace, TraceHash } from "./trace.ts"
import { Workload } from "./workload.ts"
import { droppingLedger, driftingLedger, ledgerInvariantBroken, rewritingLedger, verifyingLedger } from "./mutant_ledger.ts"
import { shadowCheckpoints } from "./storage_checker.ts"
import { createLedger, type Ledger } from "../src/ledger/ledger.ts"

export const tickMs = 10
/** Deliberately broken variants that the checkers must catch (test/sim/sim.test.ts). */
export type Mutant =
  | "none" | "ledger_drops_transfer" | "reply_cache_differs" | "reply_body_wrong" | "storage_acks_lost_writes" | "storage_skips_fsync"
  | "replies_lost_forever" | "ledger_drifts" | "checkpoint_rewrites_after_restart"
export const mutants: ReadonlyArray<Mutant> = [
  "none", "ledger_drops_transfer", "reply_cache_differs", "reply_body_wrong", "storage_acks_lost_writes", "storage_skips_fsync",
  "replies_lost_forever", "ledger_drifts", "checkpoint_rewrites_after_restart"
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

/** `at` if it is due by `now`. */
const due = (at: number | undefined, now: number): number | undefined => (at !== undefined && at <= now ? at : undefined)

export function runSimulation(options: SimOptions): SimResult {
  return new Simulation(options).run()
}

type ProcessState = { readonly _tag: "Down"; readonly since: number } | { readonly _tag: "Starting"; readonly since: number; readonly fiber: Fiber.Fiber<unknown, unknown> }
  | { readonly _tag: "Up"; readonly since: number; readonly fiber: Fiber.Fiber<unknown, unknown> }

class Simulation {
  private readonly options: SimOptions
  private readonly seed: bigint
  readonly parameters: SwarmParameters
  private readonly trace = new TraceHash()
  private readonly checker = new Checker()
  private readonly scheduler = new SimScheduler()
  private readonly clock: SimClock
  /** The clients' clock: it keeps time with the replica's, but runs while the replica is paused and has no wall-clock error. */
  private readonly clientClock: SimClock
  private readonly network: SimNetwork
  private readonly disk: SimulatedDisk
  private readonly workload: Workload
  private readonly clients: Array<SimClient> = []
  private readonly faults: Random
  private readonly requestGate: Random
  private readonly cluster: bigint
  private readonly mutant: Mutant
  private readonly print: (line: string) => void
  private readonly debug: boolean
  private state: ProcessState = { _tag: "Down", since: 0 }
  private paused = false
  private incarnation = 0
  private tick = 0
  private issued = 0
  private idle = false
  private faultsActive = true
  /** Retries and re-registrations of the clients replaced after an eviction. */
  private retiredRetries = 0
  private retiredReregistrations = 0
  private retiredBurstSteps = 0
  private readonly stats = { crashes: 0, restarts: 0, pauses: 0, evictions: 0, journalFull: 0, defects: 0, checkpoints: 0, checkpointsCompared: 0 }
  /** The id of every checkpoint the replica stored, by op, from its log. */
  private readonly checkpointIds = new Map<number, string>()
  /** Replies already sent per (client, request): the reply-cache mutant alters the repeats. */
  private readonly repliesSent = new Set<string>()

  constructor(options: SimOptions) {
    this.options = options
    this.seed = options.seed
    this.mutant = options.mutant ?? "none"
    this.print = options.print ?? (() => {})
    this.debug = options.log === "debug"
    this.parameters = { ...drawParameters(options.seed), ...options.overrides }
    const p = this.parameters
    this.clock = new SimClock(epochMs, (task) => this.scheduler.makeDispatcher().scheduleTask(task, 0), clockOffset(p))
    this.clientClock = new SimClock(epochMs, (task) => this.scheduler.makeDispatcher().scheduleTask(task, 0))
    this.cluster = Random.stream(this.seed, "cluster").u64()
    this.network = new SimNetwork(this.seed, u128ToBytes(this.cluster), p.network, this.trace)
    const layout = layoutOf(testConfig)
    this.disk = new SimulatedDisk({
      seed: Random.stream(this.seed, "disk 0").below(2 ** 31),
      sizeBytes: layout.dataFileSizeMin + gridBlocksSimulated * layout.config.blockSize,
      path: "replica-0.sim",
      readLatencyMs: p.diskReadLatencyMs,
      writeLatencyMs: p.diskWriteLatencyMs,
      // One replica has no peer to repair from: only crash tears (simulation.md §3, fault atlas).
      faults: { ...faultsNone, crashFaultProbability: p.crashFaultProbability }
    })
    this.workload = new Workload(Random.stream(this.seed, "workload"), {
      accountPool: p.accountPool, batchEventsMax: p.batchEventsMax, batchesMax: p.batchesMax, oddProbability: p.oddProbability
    })
    this.faults = Random.stream(this.seed, "process faults")
    this.requestGate = Random.stream(this.seed, "request gate")
    for (let k = 0; k < p.clientCount; k++) this.addClient(k, 0)
  }

  run(): SimResult {
    this.options.onParameters?.(this.parameters)
    this.format()
    this.clientClock.advanceTo(this.clock.now)
    this.startReplica()
    const p = this.parameters
    const progressEvery = Math.max(1, Math.floor(this.options.ticks / 4))
    for (this.tick = 1; this.tick <= this.options.ticks && this.checker.violations.length === 0; this.tick++) {
      this.step()
      if (this.tick % progressEvery === 0) this.progress()
    }
    // Liveness mode (§8.2).
    this.faultsActive = false
    this.network.options = networkHealthy
    this.network.unclog()
    const livenessStart = this.tick
    let converged = false
    for (; this.checker.violations.length === 0 && this.tick < livenessStart + livenessTicksMax; this.tick++) {
      this.step()
      if (this.state._tag === "Up" && this.clients.every((c) => c.idle || c.evicted)) {
        converged = true
        break
      }
    }
    if (!converged && this.checker.violations.length === 0) {
      const pending = this.clients.filter((c) => !c.idle && !c.evicted).length
      this.checker.fail("liveness", `${pending} requests still outstanding ${livenessTicksMax} ticks after faults stopped ` +
        `(replica ${this.state._tag}, ${this.stats.journalFull > 0 ? "the journal was full" : "journal not full"})`)
    }
    if (this.checker.violations.length === 0) this.finalRecovery()
    this.stop()
    if (this.checker.violations.length === 0) this.checkStorageDeterminism()
    void p
    const violations = this.checker.violations
    return {
      seed: this.seed.toString(),
      traceHash: this.trace.hex(),
      verdict: violations.length === 0 ? "ok" : "violation",
      violations,
      parameters: this.parameters,
      ticksRun: this.tick,
      stats: {
        ...this.stats,
        requestsIssued: this.issued,
        repliesChecked: this.checker.repliesChecked,
        opsChecked: this.checker.opsChecked,
        ackedOp: Number(this.checker.ackedOp),
        retries: this.clients.reduce((sum, c) => sum + c.retriesSent, this.retiredRetries),
        reregistrations: this.clients.reduce((sum, c) => sum + c.reregistrations, this.retiredReregistrations),
        burstSteps: this.clients.reduce((sum, c) => sum + c.burstSteps, this.retiredBurstSteps),
        ...this.network.stats,
        tornWrites: this.disk.stats.tornWrites,
        diskWrites: this.disk.stats.writes,
        traceEvents: this.trace.events,
        tasks: this.scheduler.tasksRun
      }
    }
  }

  /** One tick of simulation.md §1.2. */
  private step(): void {
    this.checker.tick = this.tick
    const now = this.tick * tickMs
    this.drain(now)
    this.network.tick(now, tickMs)
    if (this.faultsActive) this.issueRequests()
    this.scheduler.runUntilQuiescent()
    this.replaceEvicted()
    this.watchProcess()
    this.processFaults(now)
    this.scheduler.runUntilQuiescent()
  }

  /**
   * Delivers due packets and fires due timers, in time order (ties: packets, then the replica's
   * timers, then the clients'), to quiescence after each.
   */
  private drain(now: number): void {
    this.scheduler.runUntilQuiescent()
    for (;;) {
      const packetAt = this.network.nextReady(now)
      // A paused replica's timers (its ticks, its disk's completions) wait until it resumes.
      const replicaAt = this.paused ? undefined : due(this.clock.nextAt(), now)
      const clientAt = due(this.clientClock.nextAt(), now)
      const at = Math.min(packetAt ?? Infinity, replicaAt ?? Infinity, clientAt ?? Infinity)
      if (at === Infinity) break
      this.clock.advanceTo(at)
      this.clientClock.advanceTo(at)
      if (at === packetAt) this.network.step(now)
      else if (at === replicaAt) this.clock.fireNext(now)
      else this.clientClock.fireNext(now)
      this.scheduler.runUntilQuiescent()
    }
    this.clock.advanceTo(now)
    this.clientClock.advanceTo(now)
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

  // --- the replica process --------------------------------------------------------------------

  /** `scarab format` on the simulated disk (before the first start; no faults yet). */
  private format(): void {
    const program = formatStorage({ cluster: this.cluster, replica: 0, replicaCount: 1, profile: "test" }).pipe(
      Effect.provide(this.disk.layer()), Effect.provideService(Clock.Clock, this.clock))
    const fiber = Effect.runFork(program, { scheduler: this.scheduler })
    while (fiber.pollUnsafe() === undefined) {
      this.scheduler.runUntilQuiescent()
      if (fiber.pollUnsafe() !== undefined) break
      if (!this.clock.fireNext(Number.MAX_SAFE_INTEGER)) break
    }
    const exit = fiber.pollUnsafe()
    if (exit === undefined || Exit.isFailure(exit)) throw new Error(`sim: format failed: ${exit === undefined ? "stuck" : Cause.pretty(exit.cause)}`)
  }

  private startReplica(): void {
    const simulation = this
    const storage = this.storageLayer()
    const bus = SimBus.layer(this.network, () => this.clock.now, (b) => this.wrapBus(b))
    // A crashed process's fibers may still run until their simulated I/O completes (and fails);
    // what they log is not the running replica's.
    const incarnation = ++this.incarnation
    const logger = Logger.make<unknown, void>(({ message, logLevel, cause }) => {
      if (incarnation === this.incarnation && this.state._tag !== "Down") this.onLog(logLevel, message, cause)
    })
    const program = Effect.gen(function* () {
      const replica = yield* Replica
      const commitOp = yield* replica.commitOp
      simulation.onUp(BigInt(commitOp))
      return yield* Effect.never
    }).pipe(
      Effect.provide(layerReplica.pipe(Layer.provide(Layer.merge(storage, bus)))),
      Effect.provideService(ReplicaLedger, this.ledgerFactory()),
      Effect.provideService(Clock.Clock, this.clock),
      Effect.provideService(References.CurrentLoggers, new Set([logger])),
      Effect.provideService(References.MinimumLogLevel, this.debug ? "Debug" : "Info")
    )
    const fiber = Effect.runFork(program, { scheduler: this.scheduler })
    this.state = { _tag: "Starting", since: this.tick, fiber }
    this.trace.add(Trace.restart, this.tick)
    this.scheduler.runUntilQuiescent()
  }

  private onUp(commitOp: bigint): void {
    if (this.state._tag !== "Starting") return
    this.state = { _tag: "Up", since: this.tick, fiber: this.state.fiber }
    this.checker.onRecovered(commitOp)
    this.trace.add(Trace.restart, this.tick, Number(commitOp))
    this.log(`replica up: recovered commit op ${commitOp} (acknowledged ${this.checker.ackedOp})`)
  }

  private setPaused(paused: boolean): void {
    if (this.paused === paused) return
    this.paused = paused
    this.network.replicaPaused = paused
    if (paused) this.stats.pauses++
    this.trace.add(Trace.pause, this.tick, paused ? 1 : 0)
    this.log(paused ? "replica paused" : "replica resumed")
  }

  private crashReplica(): void {
    this.setPaused(false)
    if (this.state._tag === "Down") return
    const fiber = this.state.fiber
    const torn = this.disk.stats.tornWrites
    this.disk.crash()
    if (this.disk.stats.tornWrites > torn) this.log(`disk: ${this.disk.stats.tornWrites - torn} writes in flight torn by the crash`)
    this.network.detach(this.tick * tickMs)
    this.state = { _tag: "Down", since: this.tick }
    this.stats.crashes++
    this.trace.add(Trace.crash, this.tick)
    this.log(`replica crashed (acknowledged op ${this.checker.ackedOp})`)
    Effect.runFork(Fiber.interrupt(fiber), { scheduler: this.scheduler })
    this.scheduler.runUntilQuiescent()
  }

  /** A replica fiber that ended on its own failed to open (recovery refused, storage error). */
  private watchProcess(): void {
    if (this.state._tag === "Down") return
    const exit = this.state.fiber.pollUnsafe()
    if (exit === undefined) return
    const reason = Exit.isFailure(exit) ? Cause.pretty(exit.cause).split("\n")[0]! : "exited"
    const refused = /WAL recovery refused at op (\d+)/.exec(reason)
    if (refused !== null && BigInt(refused[1]!) > this.checker.ackedOp) {
      // A refusal above the acknowledged op names an availability bug rather than data loss
      // (journal writes are ordered precisely so that it cannot happen).
      this.checker.fail("recovery_refuses_unacknowledged_hole", `${reason} (acknowledged op ${this.checker.ackedOp}: nothing acknowledged was lost)`)
    } else {
      this.checker.fail("replica_restarts", `the replica process stopped: ${reason}`)
    }
    this.state = { _tag: "Down", since: this.tick }
  }

  private processFaults(_now: number): void {
    const p = this.parameters
    const state = this.state
    if (!this.faultsActive) {
      this.setPaused(false)
      if (state._tag === "Down") {
        this.stats.restarts++
        this.startReplica()
      }
      return
    }
    if (state._tag !== "Down" && (this.paused ? this.faults.chance(p.unpauseProbability) : this.faults.chance(p.pauseProbability))) {
      this.setPaused(!this.paused)
      return
    }
    if (state._tag === "Up" && this.tick - state.since >= p.crashStability && this.faults.chance(p.crashProbability)) {
      this.crashReplica()
    } else if (state._tag === "Down" && this.tick - state.since >= p.restartStability && this.faults.chance(p.restartProbability)) {
      this.stats.restarts++
      this.startReplica()
    }
  }

  /** The end of the run: one more crash, and the recovery must keep every acknowledged op. */
  private finalRecovery(): void {
    this.crashReplica()
    this.stats.restarts++
    this.startReplica()
    const start = this.tick
    while (this.state._tag === "Starting" && this.tick < start + recoveryTicksMax && this.checker.violations.length === 0) {
      this.tick++
      this.drain(this.tick * tickMs)
      this.watchProcess()
    }
    if (this.state._tag !== "Up" && this.checker.violations.length === 0) this.checker.fail("replica_restarts", "the final recovery did not finish")
  }

  private stop(): void {
    for (const client of this.clients) client.stop()
    this.scheduler.runUntilQuiescent()
    if (this.state._tag !== "Down") {
      const fiber = this.state.fiber
      this.network.detach(this.tick * tickMs)
      this.state = { _tag: "Down", since: this.tick }
      Effect.runFork(Fiber.interrupt(fiber), { scheduler: this.scheduler })
    }
    // Let the dead process's uninterruptible I/O finish so its fibers end.
    for (let i = 0; i < 100_000 && (this.scheduler.runUntilQuiescent() > 0 || this.clock.fireNext(Number.MAX_SAFE_INTEGER)); i++) { /* drain */ }
  }

  /** The disk as the replica sees it: traced, observed by the checker, and possibly broken. */
  private storageLayer(): Layer.Layer<Storage> {
    const simulation = this
    return Layer.effect(Storage, Effect.gen(function* () {
      const inner = yield* Storage
      const lossy = Random.stream(simulation.seed, `mutant storage ${simulation.stats.restarts}`)
      return Storage.of({
        implementation: inner.implementation,
        path: inner.path,
        directIo: inner.directIo,
        inFlightMax: inner.inFlightMax,
        allocate: (size) => inner.allocate(size),
        read: (zone, offset, buffer) => inner.read(zone, offset, buffer).pipe(Effect.tap(() => Effect.sync(() => {
          simulation.trace.add(Trace.diskRead, zone.start + offset, buffer.length)
        }))),
        write: (zone, offset, buffer) => {
          const wal = zone.name === "wal_prepares"
          const done = Effect.sync(() => {
            simulation.trace.add(Trace.diskWrite, zone.start + offset, buffer.length)
            if (wal) {
              const prepare = buffer.subarray(0, readU32(buffer, FrameLayout.size.offset))
              simulation.checker.onPrepareWritten(prepare)
              if (simulation.debug) simulation.log(`disk: journal write of op ${readU64(prepare, PrepareLayout.op.offset)} done (operation ${prepare[PrepareLayout.operation.offset]})`)
            }
          })
          // Mutant: a disk that acknowledges a WAL write it never made durable.
          if (wal && simulation.mutant === "storage_acks_lost_writes" && lossy.chance(0.3)) return Effect.andThen(Effect.yieldNow, done)
          // Mutant: a disk that acknowledges a write at once and makes it durable later (a
          // skipped fsync): a crash in between loses writes the replica already acted on.
          if (wal && simulation.mutant === "storage_skips_fsync") {
            return Effect.andThen(Effect.forkDetach(Effect.ignore(inner.write(zone, offset, buffer))), done)
          }
          return Effect.andThen(inner.write(zone, offset, buffer), done)
        },
        sync: inner.sync,
        sizeBytes: inner.sizeBytes
      })
    })).pipe(Layer.provide(this.disk.layer()))
  }

  /** Reply-path mutants: they alter what the replica sends, as a broken reply cache or ledger would. */
  private wrapBus(bus: SimBus): void {
    bus.observe = (message) => {
      if (message[FrameLayout.command.offset] === Command.reply) this.checker.onReplySent(message)
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

  private onLog(level: string, message: unknown, cause: Cause.Cause<unknown>): void {
    let text = Array.isArray(message) ? message.map((m) => (Cause.isCause(m) ? Cause.pretty(m).split("\n")[0]! : String(m))).join(" ") : String(message)
    if (cause.reasons.length > 0) text += ": " + Cause.pretty(cause).split("\n")[0]!
    if (text.includes("journal holds ops")) this.stats.journalFull++
    const checkpoint = /^checkpoint at op (\d+): .*\(id ([0-9a-f]+)\)$/.exec(text)
    if (checkpoint !== null) this.onCheckpoint(Number(checkpoint[1]), checkpoint[2]!)
    if (level === "Fatal") {
      this.stats.defects++
      this.checker.fail(text.includes(ledgerInvariantBroken) ? "ledger_invariants" : "replica_defect", text)
    }
    if (this.debug || level === "Fatal" || level === "Error") this.log(`replica ${level}: ${text}`)
  }

  /** The replica's ledger: verified after every request, and broken on purpose for some mutants. */
  private ledgerFactory(): () => Ledger {
    const make = this.mutant === "ledger_drops_transfer" ? droppingLedger
      : this.mutant === "ledger_drifts" ? driftingLedger
      : this.mutant === "checkpoint_rewrites_after_restart" ? rewritingLedger
      : () => createLedger()
    return () => verifyingLedger(make())
  }

  /** A checkpoint stored again at the same op (after a restart) must be the same checkpoint. */
  private onCheckpoint(op: number, id: string): void {
    this.stats.checkpoints++
    const before = this.checkpointIds.get(op)
    if (before !== undefined && before !== id) this.checker.fail("storage_determinism", `checkpoint ${op} was stored as ${before}, then as ${id}`)
    this.checkpointIds.set(op, id)
  }

  /**
   * Storage determinism (sim/storage_checker.ts): a replica that never crashed, fed the committed
   * ops, stores the same checkpoints as this one did through its crashes and restarts.
   */
  private checkStorageDeterminism(): void {
    const newest = Math.max(0, ...this.checkpointIds.keys())
    if (newest === 0) return
    const prepares = this.checker.committedPrepares(BigInt(newest))
    if (prepares === undefined) return this.checker.fail("storage_determinism", `the history lacks a committed op up to checkpoint ${newest}`)
    const shadow = shadowCheckpoints(prepares, this.cluster, this.ledgerFactory(), this.disk.sizeBytes, this.clock, this.scheduler)
    if (shadow.diverged !== undefined) return this.checker.fail("storage_determinism", `a replica that never crashed stops: ${shadow.diverged}`)
    for (const [op, id] of this.checkpointIds) {
      const expected = shadow.ids.get(op)
      if (expected !== id) {
        return this.checker.fail("storage_determinism", `checkpoint ${op}: the replica stored ${id}, a replica that never crashed stores ${expected ?? "none"}`)
      }
      this.stats.checkpointsCompared++
    }
  }

  private log(line: string): void {
    if (this.options.log === "quiet") return
    if (!this.debug && !line.startsWith("replica crashed") && !line.startsWith("replica up")) return
    this.print(`[tick ${this.tick}] ${line}`)
  }

  private progress(): void {
    if (this.options.log === "quiet") return
    this.print(`progress: tick ${this.tick}/${this.options.ticks}, requests ${this.issued}, acknowledged op ${this.checker.ackedOp}, ` +
      `replies checked ${this.checker.repliesChecked}, crashes ${this.stats.crashes}, replica ${this.state._tag}`)
  }
}

