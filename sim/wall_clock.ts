/**
 * The host's clock, for reporting throughput only (seeds per minute, ticks per second). It never
 * feeds a simulated run: nothing read here reaches the simulator, its layers or the replica.
 */
import { performance } from "node:perf_hooks"

export const wallClockMs = (): number => performance.now()
