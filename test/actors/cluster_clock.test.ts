/**
 * Cluster time (issue 15; vsr.md §8): Marzullo's smallest interval against a brute force, the
 * clock's windows and epochs (agreement, disagreement, a wall-clock jump clamped, an epoch that
 * ages out), and a cluster's primary that prepares nothing until its clocks agree.
 */
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { ClusterClock, epochMaxNs, windowMaxNs, windowMinNs } from "../../src/actors/cluster_clock.ts"
import { smallestInterval, type SourceInterval } from "../../src/actors/marzullo.ts"
import { ReplicaCore, type ReplicaConfig } from "../../src/actors/replica_core.ts"
import { createLedger } from "../../src/ledger/ledger.ts"
import { buildMessage } from "../../src/protocol/build.ts"
import { checksumSize } from "../../src/protocol/checksum.ts"
import { Command, releaseClientMin, releaseScarab, VsrOperation, zeroHeader } from "../../src/protocol/header.ts"
import { rootPrepare } from "../../src/protocol/header_rules.ts"
import { bodySizeMax } from "../../src/protocol/operation.ts"
import { registerRequestBody } from "../../src/protocol/register.ts"
import { u128ToBytes } from "../../src/protocol/build.ts"
import { synchronizeClock } from "./core_harness.ts"

const second = 1_000_000_000n
const hour = 3600n * second

describe("Marzullo's smallest interval", () => {
  it("finds the interval the most sources share, the narrowest among equals, as a brute force does", () => {
    fc.assert(fc.property(fc.array(fc.tuple(fc.integer({ min: -50, max: 50 }), fc.integer({ min: 0, max: 30 })), { minLength: 1, maxLength: 6 }), (pairs) => {
      const intervals: Array<SourceInterval> = pairs.map(([lower, width], source) => ({ source, lower, upper: lower + width }))
      const agreement = smallestInterval(intervals)
      const covering = (point: number) => intervals.filter((interval) => interval.lower <= point && point <= interval.upper).length
      // The brute force: the most intervals any point lies in (the bounds are the only candidates).
      const best = Math.max(...intervals.flatMap((interval) => [covering(interval.lower), covering(interval.upper)]))
      expect(agreement.sourcesTrue).toBe(best)
      expect(agreement.sourcesFalse).toBe(intervals.length - best)
      expect(agreement.lower).toBeLessThanOrEqual(agreement.upper)
      // Every point of the agreement lies in that many intervals.
      expect(covering(agreement.lower)).toBe(best)
      expect(covering(agreement.upper)).toBe(best)
      expect(covering((agreement.lower + agreement.upper) / 2)).toBe(best)
    }), { numRuns: 500 })
  })

  it("agrees on the overlap of three clocks, and on nothing between two that do not meet", () => {
    expect(smallestInterval([{ source: 0, lower: 8, upper: 12 }, { source: 1, lower: 11, upper: 13 }, { source: 2, lower: 10, upper: 12 }]))
      .toEqual({ lower: 11, upper: 12, sourcesTrue: 3, sourcesFalse: 0 })
    expect(smallestInterval([{ source: 0, lower: 0, upper: 1 }, { source: 1, lower: 5, upper: 6 }]).sourcesTrue).toBe(1)
    expect(smallestInterval([])).toEqual({ lower: 0, upper: 0, sourcesTrue: 0, sourcesFalse: 0 })
  })
})

/** A clock of replica 0 of three; `t` is monotonic time, the wall clock is `wall(t)`. */
function clockOf(replicaCount = 3) {
  const clock = new ClusterClock(replicaCount, 0)
  let monotonic = 1_000n
  const at = (wallOffset = 0n) => ({ realtimeNs: 1_700_000_000n * second + monotonic + wallOffset, monotonicNs: monotonic })
  return {
    clock,
    at,
    advance: (ns: bigint) => { monotonic += ns },
    /** A pong from `peer` whose clock is `offset` ahead of ours, for a ping sent `rtt` ago. */
    pong: (peer: number, offset: bigint, rtt = 2_000_000n) => {
      const now = at()
      const m0 = now.monotonicNs - rtt
      return clock.learn(peer, m0, now.realtimeNs - rtt / 2n + offset, now)
    }
  }
}

describe("ClusterClock", () => {
  it("a replica of one is its own cluster time", () => {
    const { clock, at } = clockOf(1)
    expect(clock.synchronized).toBe(true)
    expect(clock.realtime(at())).toBe(at().realtimeNs)
    expect(clock.tick(at())).toBeUndefined()
  })

  it("agrees once a quorum of clocks was sampled in a window at least 2 s old, then keeps to the interval they share", () => {
    const { clock, at, advance, pong } = clockOf()
    clock.tick(at())
    advance(10_000_000n)
    expect(pong(1, 3_000_000n)).toBe(true) // 3 ms ahead: within any tolerance
    expect(clock.tick(at())).toBeUndefined() // the window is too young
    expect(clock.realtime(at())).toBeUndefined()
    advance(BigInt(windowMinNs))
    expect(clock.tick(at())).toMatchObject({ _tag: "Synchronized", sources: 2 })
    expect(clock.synchronized).toBe(true)
    // The tightest agreement lies between the two clocks: ours is moved towards the peer's, by less than 3 ms.
    const time = clock.realtime(at())!
    expect(time).toBeGreaterThanOrEqual(at().realtimeNs)
    expect(time).toBeLessThanOrEqual(at().realtimeNs + 3_000_000n)
  })

  it("clamps a wall clock that jumped into the bounds the cluster agreed", () => {
    const { clock, at, advance, pong } = clockOf()
    clock.tick(at())
    advance(10_000_000n)
    pong(1, 0n)
    pong(2, 0n)
    advance(BigInt(windowMinNs))
    clock.tick(at())
    // Our wall clock jumps an hour ahead: cluster time stays within the agreed bounds (a few ms).
    const time = clock.realtime(at(hour))!
    expect(time).toBeLessThan(at().realtimeNs + 10_000_000n)
    expect(time).toBeGreaterThan(at().realtimeNs - 10_000_000n)
  })

  it("finds no agreement when no quorum of clocks lies within 10 s, says so after 20 s, and agrees with the majority otherwise", () => {
    const split = clockOf()
    split.clock.tick(split.at())
    split.advance(10_000_000n)
    split.pong(1, hour)
    split.pong(2, -hour)
    split.advance(BigInt(windowMinNs))
    expect(split.clock.tick(split.at())).toBeUndefined()
    expect(split.clock.realtime(split.at())).toBeUndefined()
    split.advance(BigInt(windowMaxNs))
    expect(split.clock.tick(split.at())).toMatchObject({ _tag: "Lost", reason: expect.stringContaining("no quorum of clocks agrees") })

    // Two peers an hour ahead are a quorum of three: our clock is the one out of step.
    const outvoted = clockOf()
    outvoted.clock.tick(outvoted.at())
    outvoted.advance(10_000_000n)
    outvoted.pong(1, hour)
    outvoted.pong(2, hour)
    outvoted.advance(BigInt(windowMinNs))
    expect(outvoted.clock.tick(outvoted.at())).toMatchObject({ _tag: "Synchronized" })
    expect(outvoted.clock.realtime(outvoted.at())! - outvoted.at().realtimeNs).toBeGreaterThan(hour - 10n * second)
  })

  it("drops an epoch that no newer window renewed within 60 s", () => {
    const { clock, at, advance, pong } = clockOf()
    clock.tick(at())
    advance(10_000_000n)
    pong(1, 0n)
    advance(BigInt(windowMinNs))
    clock.tick(at())
    expect(clock.synchronized).toBe(true)
    advance(BigInt(epochMaxNs) + second)
    expect(clock.tick(at())).toMatchObject({ _tag: "Lost" })
    expect(clock.realtime(at())).toBeUndefined()
  })

  it("refuses samples from the future or from before the window, and keeps a peer's least delayed sample", () => {
    const { clock, at, advance } = clockOf()
    clock.tick(at())
    const opened = at().monotonicNs
    advance(5_000_000n)
    expect(clock.learn(1, at().monotonicNs + 1n, at().realtimeNs, at())).toBe(false)
    expect(clock.learn(1, opened - 1n, at().realtimeNs, at())).toBe(false)
    expect(clock.learn(1, opened + 1_000_000n, at().realtimeNs, at())).toBe(true)
    expect(clock.learn(1, opened, at().realtimeNs, at())).toBe(false) // a longer round trip
    expect(clock.learn(1, opened + 4_000_000n, at().realtimeNs, at())).toBe(true)
  })
})

describe("a cluster's primary and cluster time", () => {
  it("prepares nothing until a quorum of clocks agrees, and prepares the client's retry once they do", () => {
    const config: ReplicaConfig = {
      cluster: 11n, replica: 0, replicaCount: 3, release: releaseScarab, releaseClientMin, batchSizeLimit: bodySizeMax, clientsMax: 8,
      storage: { journalSlotCount: 64, checkpointOps: 32, pipelineMax: 4 }
    }
    const core = new ReplicaCore(config, createLedger())
    const zero = new Uint8Array(checksumSize)
    const start = { realtimeNs: 1_000_000_000_000n, monotonicNs: 2_000_000_000_000_000n }
    core.step(start, { _tag: "Open" })
    core.step(start, { _tag: "Restore", restored: { header: rootPrepare(u128ToBytes(11n)), checkpoint: { op: 0, id: zero, parentId: zero }, sessions: [], commitMax: 0, repliesLost: [] } })
    const persist = core.step(start, { _tag: "JournalRecovered", ops: [] }).find((output) => output._tag === "PersistView")
    // The fresh primary of view 0 records that it served before it prepares anything.
    expect(persist).toMatchObject({ _tag: "PersistView", view: 0, logView: 0 })
    core.step(start, { _tag: "ViewPersisted", view: 0, logView: 0 })
    const register = buildMessage({ ...zeroHeader(Command.request), cluster: 11n, release: releaseScarab, client: 5n, operation: VsrOperation.register }, registerRequestBody())
    expect(core.clockSynchronized).toBe(false)
    expect(core.step(start, { _tag: "Message", message: register.slice() })).toEqual([])
    synchronizeClock(core, start)
    const later = { realtimeNs: start.realtimeNs + 3n * second, monotonicNs: start.monotonicNs + 3n * second }
    expect(core.step(later, { _tag: "Message", message: register.slice() }).map((output) => output._tag)).toEqual(["SendToReplica", "SendToReplica", "JournalWrite"])
  })
})
