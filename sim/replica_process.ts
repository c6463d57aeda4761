/**
 * One replica process of the simulated cluster (simulation.md §5): its data file (a simulated
 * disk), its clock (monotonic time shared with the run, its own wall-clock error), its bus
 * endpoint on the network, whether it is paused, whether it is down, starting or up, and which
 * incarnation of it runs. The simulator holds one per replica and crashes, restarts and pauses
 * them one at a time.
 *
 * A crashed incarnation's fibers may still run until their simulated I/O completes (and fails):
 * whatever they report (log lines, replica events) carries their incarnation and counts only
 * while `isCurrent` says it is the running one.
 */
import { Effect, type Exit, Fiber } from "effect"
import { assert } from "../src/assert.ts"
import type { SimulatedDisk } from "../src/layers/disk_sim.ts"
import type { SimBus, SimNetwork } from "./network.ts"
import type { SimClock, SimScheduler } from "./runtime.ts"

export type ProcessState =
  | { readonly _tag: "Down"; readonly since: number }
  | { readonly _tag: "Starting"; readonly since: number; readonly fiber: Fiber.Fiber<unknown, unknown> }
  | { readonly _tag: "Up"; readonly since: number; readonly fiber: Fiber.Fiber<unknown, unknown> }

export interface ReplicaProcessOptions {
  readonly index: number
  readonly disk: SimulatedDisk
  readonly clock: SimClock
  readonly network: SimNetwork
  readonly scheduler: SimScheduler
  /** Simulated milliseconds per tick. */
  readonly tickMs: number
}

export class ReplicaProcess {
  readonly index: number
  readonly disk: SimulatedDisk
  readonly clock: SimClock
  /** The running incarnation's bus endpoint (set when its bus layer is built). */
  bus: SimBus | undefined = undefined
  paused = false
  state: ProcessState = { _tag: "Down", since: 0 }
  /** Incarnations started so far; the running one is the latest. */
  incarnation = 0
  private readonly network: SimNetwork
  private readonly scheduler: SimScheduler
  private readonly tickMs: number

  constructor(options: ReplicaProcessOptions) {
    assert(options.index >= 0 && options.index < options.network.replicaCount, () => `replica ${options.index} is not in the cluster`)
    this.index = options.index
    this.disk = options.disk
    this.clock = options.clock
    this.network = options.network
    this.scheduler = options.scheduler
    this.tickMs = options.tickMs
  }

  /** Whether something reported by incarnation `incarnation` comes from the process running now. */
  isCurrent(incarnation: number): boolean {
    return incarnation === this.incarnation && this.state._tag !== "Down"
  }

  /** Starts a new incarnation running `program` (built for its incarnation number). */
  start(tick: number, program: (incarnation: number) => Effect.Effect<unknown, unknown>): void {
    assert(this.state._tag === "Down", () => `replica ${this.index} starts while ${this.state._tag}`)
    const incarnation = ++this.incarnation
    const fiber = Effect.runFork(program(incarnation), { scheduler: this.scheduler })
    this.state = { _tag: "Starting", since: tick, fiber }
  }

  /** The starting incarnation recovered and serves; false if it is not starting (a late report). */
  up(tick: number): boolean {
    if (this.state._tag !== "Starting") return false
    this.state = { _tag: "Up", since: tick, fiber: this.state.fiber }
    return true
  }

  /** Pauses or resumes the process (its timers and its inbound packets wait); true if that changed anything. */
  setPaused(paused: boolean): boolean {
    if (this.paused === paused) return false
    this.paused = paused
    this.network.setPaused(this.index, paused)
    return true
  }

  /**
   * Kills the running incarnation: the disk drops or tears its pending writes, the network
   * closes its connections, its fibers are interrupted. Returns the writes torn, or undefined if
   * it was down already.
   */
  crash(tick: number): number | undefined {
    this.setPaused(false)
    if (this.state._tag === "Down") return undefined
    const fiber = this.state.fiber
    const torn = this.disk.stats.tornWrites
    this.disk.crash()
    this.kill(tick, fiber)
    return this.disk.stats.tornWrites - torn
  }

  /** The end of the run: the process goes away without a crash of its disk. */
  stop(tick: number): void {
    if (this.state._tag !== "Down") this.kill(tick, this.state.fiber)
  }

  /** How the running incarnation's fiber ended, if it did (it failed to open or stopped). */
  exited(): Exit.Exit<unknown, unknown> | undefined {
    return this.state._tag === "Down" ? undefined : this.state.fiber.pollUnsafe()
  }

  /** Marks an incarnation whose fiber ended on its own as down. */
  ended(tick: number): void {
    assert(this.exited() !== undefined, () => "only an ended incarnation is marked down")
    this.state = { _tag: "Down", since: tick }
  }

  /** The time of this process's next timer due by `now` (none while paused: it does not run). */
  timerDue(now: number): number | undefined {
    if (this.paused) return undefined
    const at = this.clock.nextAt()
    return at !== undefined && at <= now ? at : undefined
  }

  private kill(tick: number, fiber: Fiber.Fiber<unknown, unknown>): void {
    this.network.detach(this.index, tick * this.tickMs)
    this.bus = undefined
    this.state = { _tag: "Down", since: tick }
    Effect.runFork(Fiber.interrupt(fiber), { scheduler: this.scheduler })
  }
}
