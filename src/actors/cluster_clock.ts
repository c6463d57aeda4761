/**
 * Cluster time (vsr.md §8): the primary stamps prepares with its wall clock only within bounds
 * that a replication quorum of the cluster's clocks agree on, so no single clock — its own
 * included — can move the ledger's time by more than the agreement allows.
 *
 * Samples come from ping/pong (§8.1): a pong echoes our ping's monotonic time `m0` and adds the
 * peer's wall clock `t1`; received at our monotonic `m2`, the round trip is `m2 − m0`, the one-way
 * delay half of it, and the peer's offset from us `t1 + owd − t2`, where `t2` is our wall clock
 * derived from the monotonic clock since the sampling window opened (a wall-clock jump during the
 * window does not corrupt samples). Each window keeps, per peer, the sample with the smallest
 * delay. Once a window is at least 2 s old and has learned something new, Marzullo's algorithm
 * (§8.2) looks for the narrowest interval a quorum agrees on, halving the tolerance from 10 s
 * while a quorum still agrees; on agreement the window becomes the epoch that bounds our clock
 * and a new window opens. A window that has not agreed in 20 s is discarded; an epoch older than
 * 60 s is dropped, and the replica has no cluster time until a window agrees again (§8.3).
 *
 * Pure: time comes in as `Now`, so the simulator's seed replays it.
 */
import { assert } from "../assert.ts"
import { smallestInterval, type SourceInterval } from "./marzullo.ts"
import { quorums } from "./quorum.ts"
import type { Now } from "./replica_core.ts"

const msNs = 1_000_000
export const windowMinNs = 2_000 * msNs
export const windowMaxNs = 20_000 * msNs
export const epochMaxNs = 60_000 * msNs
/** The widest disagreement tolerated between clocks (TigerBeetle's clock_offset_tolerance_max). */
export const toleranceMaxNs = 10_000 * msNs
/** A sample whose delay grew by more than this over the epoch's, with its offset moved as much, was delayed one way. */
const asymmetryNs = 10 * msNs
const agreementRoundsMax = 64

interface Sample {
  /** How far the peer's clock is ahead of ours (ns). */
  readonly offset: number
  /** The one-way delay estimate: half the round trip (ns). */
  readonly owd: number
}

interface Window {
  readonly monotonic: bigint
  readonly realtime: bigint
  /** Per replica: its best sample in this window (ours is implicit: offset 0, no delay). */
  readonly samples: Array<Sample | undefined>
  learned: boolean
}

interface Epoch {
  readonly monotonic: bigint
  readonly realtime: bigint
  readonly samples: ReadonlyArray<Sample | undefined>
  /** The agreed bounds of the offset of cluster time from our clock (ns). */
  readonly lower: number
  readonly upper: number
}

/** What a tick changed: agreement reached (or renewed), or lost; `undefined` when nothing changed. */
export type ClockChange =
  | { readonly _tag: "Synchronized"; readonly lower: number; readonly upper: number; readonly sources: number }
  | { readonly _tag: "Lost"; readonly reason: string }

export class ClusterClock {
  readonly replicaCount: number
  readonly replica: number
  private readonly quorum: number
  private window: Window | undefined
  private epoch: Epoch | undefined

  constructor(replicaCount: number, replica: number) {
    assert(replicaCount >= 1, () => "a cluster has a replica")
    assert(replica < replicaCount, () => `replica ${replica} of ${replicaCount}`)
    this.replicaCount = replicaCount
    this.replica = replica
    this.quorum = quorums(replicaCount).replication
  }

  get synchronized(): boolean {
    return this.replicaCount === 1 || this.epoch !== undefined
  }

  /**
   * A pong from `peer`: our ping left at monotonic `m0`, the peer's wall clock read `t1`, and it
   * arrived `now`. Returns whether the window took the sample.
   */
  learn(peer: number, m0: bigint, t1: bigint, now: Now): boolean {
    assert(peer !== this.replica, () => "a replica samples the others' clocks")
    assert(peer < this.replicaCount, () => `replica ${peer} is not one of ${this.replicaCount}`)
    const window = this.windowAt(now)
    const m2 = now.monotonicNs
    // A pong from the future, or echoing a ping sent before this window opened, is not a sample of it.
    if (m0 > m2 || m0 < window.monotonic || m2 - window.monotonic > BigInt(windowMaxNs)) return false
    const owd = Number(m2 - m0) / 2
    const t2 = window.realtime + (m2 - window.monotonic)
    let offset = Number(t1 - t2) + owd
    const previous = this.epoch?.samples[peer]
    if (previous !== undefined && owd > previous.owd) {
      // The extra delay went one way: the ping (offset too high) or the pong (offset too low).
      const delay = owd - previous.owd
      if (offset > previous.offset + asymmetryNs) offset -= delay
      else if (offset < previous.offset - asymmetryNs) offset += delay
    }
    const best = window.samples[peer]
    if (best !== undefined && best.owd < owd) return false
    window.samples[peer] = { offset, owd }
    window.learned = true
    assert(window.samples[peer]!.owd >= 0, () => "a delay is never negative")
    return true
  }

  /** Each tick: agree on a window that may, discard one that cannot, drop an epoch too old. */
  tick(now: Now): ClockChange | undefined {
    if (this.replicaCount === 1) return undefined
    assert(this.epoch === undefined || now.monotonicNs >= this.epoch.monotonic, () => "the epoch opened in the past")
    const window = this.windowAt(now)
    const age = now.monotonicNs - window.monotonic
    assert(age >= 0n, () => "the window opened in the past")
    let change: ClockChange | undefined
    if (this.epoch !== undefined && now.monotonicNs - this.epoch.monotonic > BigInt(epochMaxNs)) {
      this.epoch = undefined
      change = { _tag: "Lost", reason: "no window agreed for 60 s" }
    }
    if (window.learned && age >= BigInt(windowMinNs)) {
      window.learned = false
      const agreed = this.agree(window)
      if (agreed !== undefined) {
        const wasSynchronized = this.epoch !== undefined
        this.epoch = { monotonic: window.monotonic, realtime: window.realtime, samples: window.samples, lower: agreed.lower, upper: agreed.upper }
        this.window = this.openWindow(now)
        return wasSynchronized ? undefined : { _tag: "Synchronized", lower: agreed.lower, upper: agreed.upper, sources: agreed.sourcesTrue }
      }
    }
    if (age > BigInt(windowMaxNs)) {
      const sampled = window.samples.filter((sample) => sample !== undefined).length + 1
      this.window = this.openWindow(now)
      if (this.epoch === undefined) {
        change ??= { _tag: "Lost", reason: sampled * 2 <= this.replicaCount ? "partitioned: too few replicas answered" : "no quorum of clocks agrees within 10 s" }
      }
    }
    return change
  }

  /**
   * Our wall clock, clamped into the bounds the epoch agreed (vsr.md §8.3); `undefined` without
   * an epoch. A replica of one is its own cluster: its wall clock.
   */
  realtime(now: Now): bigint | undefined {
    if (this.replicaCount === 1) return now.realtimeNs
    const epoch = this.epoch
    if (epoch === undefined) return undefined
    assert(now.monotonicNs >= epoch.monotonic, () => "the epoch opened in the past")
    const projected = epoch.realtime + (now.monotonicNs - epoch.monotonic)
    const lower = projected + BigInt(Math.floor(epoch.lower))
    const upper = projected + BigInt(Math.ceil(epoch.upper))
    assert(lower <= upper, () => "the agreed bounds are ordered")
    return now.realtimeNs < lower ? lower : now.realtimeNs > upper ? upper : now.realtimeNs
  }

  /** The narrowest agreement a quorum keeps as the tolerance halves from 10 s, or `undefined`. */
  private agree(window: Window) {
    assert(window.samples[this.replica] === undefined, () => "our own clock is no sample: it is the source of offset 0")
    const sources: Array<{ readonly source: number; readonly sample: Sample }> = [{ source: this.replica, sample: { offset: 0, owd: 0 } }]
    window.samples.forEach((sample, source) => {
      if (sample !== undefined) sources.push({ source, sample })
    })
    let tolerance = toleranceMaxNs
    let candidate: ReturnType<typeof smallestInterval> | undefined
    for (let round = 0; round < agreementRoundsMax; round++) {
      const intervals: Array<SourceInterval> = sources.map(({ source, sample }) =>
        ({ source, lower: sample.offset - sample.owd - tolerance, upper: sample.offset + sample.owd + tolerance }))
      const best = smallestInterval(intervals)
      if (best.sourcesTrue < this.quorum) break
      candidate = best
      if (tolerance === 0) break
      tolerance = Math.floor(tolerance / 2)
    }
    assert(candidate === undefined || candidate.sourcesTrue >= this.quorum, () => "an agreement holds a quorum")
    return candidate
  }

  private windowAt(now: Now): Window {
    this.window ??= this.openWindow(now)
    assert(this.window.monotonic <= now.monotonicNs, () => "the window opened in the past")
    assert(this.replicaCount > 1, () => "a replica of one samples no clock")
    return this.window
  }

  private openWindow(now: Now): Window {
    assert(this.window === undefined || this.window.monotonic <= now.monotonicNs, () => "windows open in time order")
    const window: Window = { monotonic: now.monotonicNs, realtime: now.realtimeNs, samples: Array.from({ length: this.replicaCount }, () => undefined), learned: false }
    assert(window.samples.length === this.replicaCount, () => "a sample slot per replica")
    return window
  }
}
