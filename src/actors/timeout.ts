/**
 * A protocol timeout counted in ticks (vsr.md §12.1: time reaches the core only as ticks), with
 * TigerBeetle's exponential backoff and jitter: a timeout that fires and is backed off waits the
 * round trip twice plus a random share of `backoffMinTicks · 2^attempts`, capped, so replicas
 * retrying the same thing do not retry in step. The jitter comes from the core's seeded PRNG, so
 * a run replays exactly from its seeds.
 */
import { assert } from "../assert.ts"
import type { Prng } from "../prng.ts"

/** A round trip between replicas as first assumed (300 ms), and how many of them a backed-off timeout waits. */
export const rttTicks = 30
export const rttMultiple = 2
/** Bounds of the backoff added to a backed-off timeout: 10 ms to 10 s. */
export const backoffMinTicks = 1
export const backoffMaxTicks = 1000

export class Timeout {
  readonly name: string
  /** Ticks until it first fires after `start`. */
  readonly afterTicks: number
  /** Ticks until it fires now: `afterTicks`, or what the last backoff chose; undefined while stopped. */
  private afterDynamic: number | undefined
  private ticks = 0
  /** Backoffs since it started (wraps at 256, as TigerBeetle's u8, so the exponent stays bounded). */
  private attempts = 0

  constructor(name: string, afterTicks: number) {
    assert(Number.isInteger(afterTicks), () => `${name}: after ${afterTicks} ticks is not a whole number`)
    assert(afterTicks > 0, () => `${name}: a timeout waits at least a tick`)
    this.name = name
    this.afterTicks = afterTicks
  }

  get ticking(): boolean {
    return this.afterDynamic !== undefined
  }

  start(): void {
    this.attempts = 0
    this.ticks = 0
    this.afterDynamic = this.afterTicks
    assert(this.ticking, () => `${this.name}: started`)
    assert(!this.fired(), () => `${this.name}: a timeout just started is not due`)
  }

  stop(): void {
    this.attempts = 0
    this.ticks = 0
    this.afterDynamic = undefined
    assert(!this.ticking, () => `${this.name}: stopped`)
    assert(!this.fired(), () => `${this.name}: a stopped timeout never fires`)
  }

  /** Counts from zero again, keeping the wait the last backoff chose. */
  reset(): void {
    assert(this.ticking, () => `${this.name}: reset while stopped`)
    this.attempts = 0
    this.ticks = 0
    assert(!this.fired(), () => `${this.name}: a timeout just reset is not due`)
  }

  /** Counts from zero again, waiting longer: the round trip twice plus exponential backoff with jitter. */
  backoff(prng: Prng): void {
    assert(this.ticking, () => `${this.name}: backed off while stopped`)
    this.ticks = 0
    this.attempts = (this.attempts + 1) % 256
    this.afterDynamic = rttTicks * rttMultiple + backoffWithJitter(prng, backoffMinTicks, backoffMaxTicks, this.attempts)
    assert(this.afterDynamic > 0, () => `${this.name}: a backed-off timeout waits`)
  }

  tick(): void {
    assert(this.ticks >= 0, () => `${this.name}: ticks count up from zero`)
    if (this.afterDynamic === undefined) return
    this.ticks += 1
    assert(this.ticks <= this.afterDynamic, () => `${this.name} ticks past its due tick: it was not reset when it fired`)
  }

  /** Whether it is due; the caller must then reset, back off or stop it (else it fires every tick: a defect). */
  fired(): boolean {
    assert(this.ticks >= 0, () => `${this.name}: ticks count up from zero`)
    if (this.afterDynamic === undefined) return false
    assert(this.ticks <= this.afterDynamic, () => `${this.name} fires every tick: it was not reset when it fired`)
    return this.ticks === this.afterDynamic
  }
}

/**
 * `min` plus a uniform draw in [0, min(max − min, max(1, min) · 2^attempt)]: the capped exponential
 * backoff with full jitter TigerBeetle uses for its retries.
 */
export function backoffWithJitter(prng: Prng, min: number, max: number, attempt: number): number {
  assert(Number.isInteger(min), () => `backoff minimum ${min} is whole ticks`)
  assert(Number.isInteger(max), () => `backoff maximum ${max} is whole ticks`)
  assert(max > min, () => `backoff bounds ${min}..${max} are empty`)
  const exponent = Math.min(attempt, 31)
  const backoff = Math.min(max - min, Math.max(1, min) * 2 ** exponent)
  const result = min + prng.below(backoff + 1)
  assert(result >= min, () => `backoff ${result} below ${min}`)
  assert(result <= max, () => `backoff ${result} above ${max}`)
  return result
}
