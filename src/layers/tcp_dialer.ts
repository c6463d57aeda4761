/**
 * When to dial the replicas we connect to (vsr.md §12.6; TigerBeetle's `tick_connect` and
 * `connect_connection`). Of each pair of replicas, the one with the lower index dials: a replica
 * dials every replica above it and accepts the ones below it, so two replicas never dial each
 * other at the same time and end with two connections, and each pair has exactly one dialer.
 *
 * Every attempt waits first: a delay drawn with exponential backoff and jitter between
 * `delayMinMs` (50) and `delayMaxMs` (1000), as TigerBeetle's `exponential_backoff_with_jitter`:
 * the cap grows as `delayMinMs · 2^attempts` up to the range, and the delay is uniform below it.
 * So a restarted cluster does not dial in lockstep, and a replica that stays down costs one
 * attempt a second at most. The count of attempts starts over once the replica is heard from
 * (not merely once a connection opens: a peer that accepts and closes at once must still back off).
 *
 * The timers are Node's own (`setTimeout`, unreferenced: they never keep the process alive): the
 * layer faces the world, and the simulator has its own network. Randomness comes from Effect's
 * `Random`, handed in as a function.
 */
import { assert } from "../assert.ts"

export const connectDelayMinMsDefault = 50
export const connectDelayMaxMsDefault = 1000
/** The exponent stops growing here: 2^30 · 50 ms is far beyond any sensible cap. */
const attemptsExponentMax = 30

/**
 * The delay before attempt `attempts` (0 for the first): `delayMinMs` plus a uniform draw in
 * 0..min(delayMaxMs − delayMinMs, delayMinMs · 2^attempts). `random` is uniform in [0, 1).
 */
export function connectDelayMs(attempts: number, delayMinMs: number, delayMaxMs: number, random: () => number): number {
  assert(Number.isInteger(attempts), () => "attempts are counted")
  assert(attempts >= 0, () => "attempts are not negative")
  assert(delayMinMs > 0, () => "the minimum delay is positive")
  assert(delayMaxMs > delayMinMs, () => "the maximum delay is above the minimum")
  const cap = Math.min(delayMaxMs - delayMinMs, delayMinMs * 2 ** Math.min(attempts, attemptsExponentMax))
  const delay = delayMinMs + Math.floor(random() * (cap + 1))
  assert(delay >= delayMinMs, () => `delay ${delay} below ${delayMinMs}`)
  assert(delay <= delayMaxMs, () => `delay ${delay} above ${delayMaxMs}`)
  return delay
}

export interface DialerOptions {
  /** Our index: we dial the replicas above it. */
  readonly replica: number
  readonly replicaCount: number
  readonly delayMinMs: number
  readonly delayMaxMs: number
  readonly random: () => number
  /** Dials `replica` now (the bus checks it still has no connection to it). */
  readonly dial: (replica: number) => void
}

/** One pending timer at most per replica we dial, and the count of attempts since we last heard from it. */
export class Dialer {
  private readonly options: DialerOptions
  private readonly attempts: Array<number>
  private readonly timers: Array<ReturnType<typeof setTimeout> | undefined>
  private stopped = false

  constructor(options: DialerOptions) {
    assert(options.replica < options.replicaCount, () => `replica ${options.replica} of a cluster of ${options.replicaCount}`)
    assert(options.delayMaxMs > options.delayMinMs, () => "the maximum delay is above the minimum")
    this.options = options
    this.attempts = Array.from({ length: options.replicaCount }, () => 0)
    this.timers = Array.from({ length: options.replicaCount }, () => undefined)
  }

  /** Whether we dial `replica` (it is above us), rather than wait for it to dial us. */
  dials(replica: number): boolean {
    return replica > this.options.replica && replica < this.options.replicaCount
  }

  /** Dials every replica above us, each after its first delay. */
  start(): void {
    assert(!this.stopped, () => "a stopped dialer is not started again")
    assert(this.timers.every((timer) => timer === undefined), () => "the dialer starts once")
    for (let replica = this.options.replica + 1; replica < this.options.replicaCount; replica++) this.schedule(replica)
  }

  /** The connection to `replica` is gone (or never came): dial again after the next delay. */
  schedule(replica: number): void {
    assert(this.dials(replica), () => `replica ${this.options.replica} does not dial replica ${replica}`)
    assert(this.attempts[replica] >= 0, () => "attempts are not negative")
    if (this.stopped || this.timers[replica] !== undefined) return
    const delayMs = connectDelayMs(this.attempts[replica], this.options.delayMinMs, this.options.delayMaxMs, this.options.random)
    this.attempts[replica]++
    const timer = setTimeout(() => this.fire(replica), delayMs)
    timer.unref()
    this.timers[replica] = timer
  }

  private fire(replica: number): void {
    assert(this.dials(replica), () => `replica ${this.options.replica} does not dial replica ${replica}`)
    assert(this.timers[replica] !== undefined || this.stopped, () => "a timer fired that was not pending")
    this.timers[replica] = undefined
    if (!this.stopped) this.options.dial(replica)
  }

  /** We heard from `replica`: the next reconnection starts from the shortest delay again. */
  heard(replica: number): void {
    assert(this.dials(replica), () => `replica ${this.options.replica} does not dial replica ${replica}`)
    this.attempts[replica] = 0
    assert(this.attempts[replica] === 0, () => "attempts start over")
  }

  stop(): void {
    assert(this.timers.length === this.options.replicaCount, () => "one timer slot per replica")
    this.stopped = true
    for (const timer of this.timers) if (timer !== undefined) clearTimeout(timer)
    this.timers.fill(undefined)
    assert(this.timers.every((timer) => timer === undefined), () => "every timer cleared")
  }
}
