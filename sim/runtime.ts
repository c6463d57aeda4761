/**
 * The simulator's runtime (simulation.md §1.3): one run queue shared by every fiber and a virtual
 * Clock whose timers fire only when the simulator's loop says so. Nothing here reads the host's
 * time or yields to the event loop: `runUntilQuiescent` runs tasks until none is left, which is
 * the moment every fiber is suspended on a queue, a Deferred or a timer of this clock. The order
 * in which tasks run is FIFO, so scheduling adds no ordering the seed does not control.
 */
import { Duration, Effect, type Fiber, type Clock, type Scheduler } from "effect"
import { assert } from "../src/assert.ts"

/** Operations a fiber runs before it yields to the others (Effect's own default). */
const opsBeforeYield = 2048
/** Tasks one quiescence phase may run before the simulator declares a livelock. */
export const quiescenceTasksMax = 10_000_000

export class SimScheduler implements Scheduler.Scheduler {
  readonly executionMode = "sync" as const
  private tasks: Array<() => void> = []
  private head = 0
  /** Tasks run so far: a figure for the report. */
  tasksRun = 0
  private readonly dispatcher: Scheduler.SchedulerDispatcher = {
    scheduleTask: (task) => {
      this.tasks.push(task)
    },
    flush: () => {
      this.runUntilQuiescent()
    }
  }

  shouldYield(fiber: Fiber.Fiber<unknown, unknown>): boolean {
    return fiber.currentOpCount >= opsBeforeYield
  }

  makeDispatcher(): Scheduler.SchedulerDispatcher {
    return this.dispatcher
  }

  /** Runs tasks (FIFO) until none is left; returns how many ran. */
  runUntilQuiescent(): number {
    let ran = 0
    while (this.head < this.tasks.length) {
      const task = this.tasks[this.head]!
      this.head++
      task()
      ran++
      assert(ran < quiescenceTasksMax, () => "the actors never became quiescent (livelock)")
      if (this.head > 4096 && this.head * 2 > this.tasks.length) {
        this.tasks = this.tasks.slice(this.head)
        this.head = 0
      }
    }
    this.tasks = []
    this.head = 0
    this.tasksRun += ran
    return ran
  }
}

interface Timer {
  readonly at: number
  readonly seq: number
  readonly wake: () => void
  cancelled: boolean
}

/**
 * Virtual time in integer milliseconds since the simulated epoch (`epochMs` is added for the
 * wall clock). A `sleep` registers a timer; `fireDue(now)` makes the due ones runnable, earliest
 * first, ties in registration order.
 */
export class SimClock implements Clock.Clock {
  private nowMs = 0
  private seq = 0
  private timers: Array<Timer> = []
  private readonly epochMs: number
  private readonly schedule: (task: () => void) => void
  /**
   * The wall clock's error at a given monotonic time (simulation.md §4): realtime = epoch +
   * monotonic + offset(monotonic). Timers (sleep) run on monotonic time and ignore it.
   */
  private readonly offsetMs: (nowMs: number) => number

  constructor(epochMs: number, schedule: (task: () => void) => void, offsetMs: (nowMs: number) => number = () => 0) {
    this.epochMs = epochMs
    this.schedule = schedule
    this.offsetMs = offsetMs
  }

  get now(): number {
    return this.nowMs
  }

  currentTimeMillisUnsafe(): number {
    return this.epochMs + this.nowMs + Math.round(this.offsetMs(this.nowMs))
  }
  currentTimeNanosUnsafe(): bigint {
    return BigInt(this.currentTimeMillisUnsafe()) * 1_000_000n
  }
  monotonicTimeNanosUnsafe(): bigint {
    return BigInt(this.nowMs) * 1_000_000n
  }
  readonly currentTimeMillis = Effect.sync(() => this.currentTimeMillisUnsafe())
  readonly currentTimeNanos = Effect.sync(() => this.currentTimeNanosUnsafe())
  readonly monotonicTimeNanos = Effect.sync(() => this.monotonicTimeNanosUnsafe())

  sleep(duration: Duration.Duration): Effect.Effect<void> {
    return Effect.callback<void>((resume) => {
      const ms = Math.max(0, Math.ceil(Duration.toMillis(duration)))
      const timer: Timer = { at: this.nowMs + ms, seq: this.seq++, wake: () => resume(Effect.void), cancelled: false }
      this.insert(timer)
      return Effect.sync(() => {
        timer.cancelled = true
      })
    })
  }

  /** Moves time forward to `at` (never backwards) without firing anything. */
  advanceTo(at: number): void {
    this.nowMs = Math.max(this.nowMs, at)
  }

  /** The earliest pending timer's time, or undefined. */
  nextAt(): number | undefined {
    while (this.timers.length > 0 && this.timers[0]!.cancelled) this.timers.shift()
    return this.timers[0]?.at
  }

  /**
   * Advances to `at` (never backwards) and makes every timer due at exactly the earliest due
   * time runnable; returns whether one fired. Call repeatedly, running the scheduler between.
   */
  fireNext(limit: number): boolean {
    const at = this.nextAt()
    if (at === undefined || at > limit) {
      this.nowMs = Math.max(this.nowMs, limit)
      return false
    }
    this.nowMs = Math.max(this.nowMs, at)
    while (this.timers.length > 0 && (this.timers[0]!.cancelled || this.timers[0]!.at === at)) {
      const timer = this.timers.shift()!
      if (!timer.cancelled) this.schedule(timer.wake)
    }
    return true
  }

  /** Keeps `timers` sorted by (at, seq); inserts near the end are the common case. */
  private insert(timer: Timer): void {
    let i = this.timers.length
    while (i > 0) {
      const other = this.timers[i - 1]!
      if (other.at < timer.at || (other.at === timer.at && other.seq < timer.seq)) break
      i--
    }
    this.timers.splice(i, 0, timer)
  }
}
