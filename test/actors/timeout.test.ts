/**
 * Protocol timeouts in ticks (src/actors/timeout.ts): a started timeout fires after its ticks;
 * a backed-off one waits two round trips plus exponential backoff with jitter, within bounds and
 * the same for the same seed; one left due after firing is a defect.
 */
import { describe, expect, it } from "vitest"
import { backoffMaxTicks, backoffMinTicks, backoffWithJitter, rttMultiple, rttTicks, Timeout } from "../../src/actors/timeout.ts"
import { Prng } from "../../src/prng.ts"

const ticksToFire = (timeout: Timeout): number => {
  for (let ticks = 1; ticks <= 10_000; ticks++) {
    timeout.tick()
    if (timeout.fired()) return ticks
  }
  return -1
}

describe("Timeout", () => {
  it("fires after its ticks once started, never while stopped, and again as long after a reset", () => {
    const timeout = new Timeout("t", 25)
    timeout.tick()
    expect(timeout.fired()).toBe(false)
    timeout.start()
    expect(ticksToFire(timeout)).toBe(25)
    timeout.reset()
    expect(ticksToFire(timeout)).toBe(25)
    timeout.stop()
    expect(ticksToFire(timeout)).toBe(-1)
  })

  it("backs off to two round trips plus a jittered, growing, capped backoff; the same seed draws the same waits", () => {
    const waits = (seed: number) => {
      const timeout = new Timeout("t", 25)
      const prng = new Prng(seed)
      timeout.start()
      const result: Array<number> = []
      for (let attempt = 0; attempt < 14; attempt++) {
        timeout.backoff(prng)
        result.push(ticksToFire(timeout))
      }
      return result
    }
    const first = waits(7)
    expect(waits(7)).toEqual(first)
    expect(waits(8)).not.toEqual(first)
    for (const wait of first) {
      expect(wait).toBeGreaterThanOrEqual(rttTicks * rttMultiple + backoffMinTicks)
      expect(wait).toBeLessThanOrEqual(rttTicks * rttMultiple + backoffMaxTicks)
    }
    // The jitter's range doubles per attempt up to the cap: attempt 1 adds at most 2 ticks.
    const prng = new Prng(1)
    for (let i = 0; i < 100; i++) expect(backoffWithJitter(prng, 1, 1000, 1)).toBeLessThanOrEqual(3)
  })

  it("stops on a timeout left due after it fired (it would fire every tick)", () => {
    const timeout = new Timeout("t", 2)
    timeout.start()
    expect(ticksToFire(timeout)).toBe(2)
    expect(() => timeout.tick()).toThrow(/not reset when it fired/)
  })
})
