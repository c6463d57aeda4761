/**
 * The cluster's network partitions and clock jumps (issue 15, sim/partitions.ts and
 * sim/clock_jumps.ts): drawn from their own streams, so they replay from the seed; a partition
 * always leaves replicas on both sides of what it cuts, cuts a client only from replicas, and
 * stops when faults stop; only a minority of clocks ever jump (with the one an hour off among
 * them), fewer than a replication quorum; a replica of one has neither.
 */
import { describe, expect, it } from "vitest"
import { quorums } from "../../src/actors/quorum.ts"
import { u128ToBytes } from "../../src/protocol/build.ts"
import { drawClockJumps } from "../../sim/clock_jumps.ts"
import { networkHealthy, SimNetwork } from "../../sim/network.ts"
import { cuts, type Partition, Partitions } from "../../sim/partitions.ts"
import { TraceHash } from "../../sim/trace.ts"

const replica = (index: number) => ({ kind: "replica" as const, index })
const client = (index: number) => ({ kind: "client" as const, index })

/** Every partition a run of `ticks` draws, with the trace hash of drawing them. */
function partitionsOf(seed: bigint, replicaCount: number, ticks: number, primary = 0) {
  const trace = new TraceHash()
  const network = new SimNetwork(seed, u128ToBytes(1n), replicaCount, networkHealthy, trace)
  const partitions = new Partitions({ seed, replicaCount, clientCount: 4, network, trace, primary: () => primary, log: () => {} })
  const drawn: Array<Partition> = []
  for (let tick = 1; tick <= ticks; tick++) {
    partitions.tick(tick)
    const current = partitions.current
    if (current !== undefined && current !== drawn.at(-1)) drawn.push(current)
    expect(network.partitioned).toBe(current !== undefined)
  }
  partitions.stop(ticks)
  expect(network.partitioned).toBe(false)
  return { drawn, hash: trace.hex(), stats: partitions.stats }
}

describe("partitions", () => {
  it("replay from the seed, cover every kind over a few seeds, and leave replicas on both sides of every cut", () => {
    expect(partitionsOf(5n, 3, 20_000).hash).toBe(partitionsOf(5n, 3, 20_000).hash)
    const kinds = new Set<string>()
    for (let seed = 1n; seed <= 10n; seed++) {
      for (const replicaCount of [2, 3, 5, 6]) {
        for (const partition of partitionsOf(seed, replicaCount, 20_000).drawn) {
          kinds.add(partition.kind)
          const cut = partition.replicas.flatMap((row, source) => row.flatMap((isCut, target) => (isCut ? [[source, target]] : [])))
          if (partition.kind === "client") {
            expect(cut).toEqual([])
            expect(partition.client!.from.some((isCut) => isCut)).toBe(true)
            expect(partition.client!.requests || partition.client!.replies).toBe(true)
            continue
          }
          expect(cut.length).toBeGreaterThan(0)
          // No replica cuts itself; from three replicas up, a side holds two, and their link works.
          for (const [source, target] of cut) expect(source).not.toBe(target)
          if (replicaCount > 2) expect(cut.length).toBeLessThan(replicaCount * (replicaCount - 1))
        }
      }
    }
    expect([...kinds].sort()).toEqual(["asymmetric", "client", "isolating", "symmetric"])
  })

  it("an isolating partition prefers the primary the replicas report; a replica of one is never partitioned", () => {
    let isolatedPrimary = 0
    let isolating = 0
    for (let seed = 1n; seed <= 20n; seed++) {
      for (const partition of partitionsOf(seed, 5, 20_000, 3).drawn) {
        if (partition.kind !== "isolating") continue
        isolating++
        // The replica alone is the one whose every link is cut one way or the other.
        const alone = [0, 1, 2, 3, 4].find((r) => [0, 1, 2, 3, 4].every((o) => o === r || partition.replicas[r]![o] || partition.replicas[o]![r]))
        if (alone === 3) isolatedPrimary++
      }
    }
    expect(isolating).toBeGreaterThan(10)
    expect(isolatedPrimary).toBeGreaterThan(isolating / 2)
    for (let seed = 1n; seed <= 5n; seed++) expect(partitionsOf(seed, 1, 20_000).drawn).toEqual([])
  })

  it("cuts: replica links by the matrix; a client's requests, replies or both, only from the replicas named", () => {
    const partition: Partition = {
      kind: "client",
      replicas: [[false, false], [false, false]],
      client: { index: 2, from: [true, false], requests: true, replies: false }
    }
    expect(cuts(partition, client(2), replica(0))).toBe(true)
    expect(cuts(partition, replica(0), client(2))).toBe(false)
    expect(cuts(partition, client(2), replica(1))).toBe(false)
    expect(cuts(partition, client(1), replica(0))).toBe(false)
    expect(cuts(partition, replica(0), replica(1))).toBe(false)
    const oneWay: Partition = { kind: "asymmetric", replicas: [[false, true], [false, false]], client: undefined }
    expect(cuts(oneWay, replica(0), replica(1))).toBe(true)
    expect(cuts(oneWay, replica(1), replica(0))).toBe(false)
    expect(cuts(oneWay, client(0), replica(0))).toBe(false)
  })
})

describe("clock jumps", () => {
  it("jump a minority of the clocks, fewer than a replication quorum, the one an hour off among them; none below three replicas", () => {
    let runsWithJumps = 0
    const offsets = new Set<number>()
    for (let seed = 1n; seed <= 40n; seed++) {
      for (const replicaCount of [3, 4, 5, 6]) {
        const bad = seed % 3n === 0n ? Number(seed) % replicaCount : undefined
        const jumps = drawClockJumps(seed, replicaCount, 10_000, bad)
        const jumpers = new Set(jumps.jumps.map((jump) => jump.replica))
        if (jumpers.size > 0) runsWithJumps++
        expect(jumpers.size * 2).toBeLessThan(replicaCount)
        expect(jumpers.size === 0 || jumpers.size < quorums(replicaCount).replication).toBe(true)
        if (bad !== undefined && jumpers.size > 0) expect(jumpers.has(bad)).toBe(true)
        for (const jump of jumps.jumps) {
          expect(jump.tick).toBeGreaterThanOrEqual(1)
          expect(jump.tick).toBeLessThanOrEqual(10_000)
          offsets.add(Math.abs(jump.offsetMs))
        }
      }
    }
    expect(runsWithJumps).toBeGreaterThan(40)
    // Within the tolerance, beyond it, and back to no error.
    expect([...offsets].sort((a, b) => a - b)).toEqual([0, 3_000, 30_000, 300_000, 3_600_000])
    for (const replicaCount of [1, 2]) for (let seed = 1n; seed <= 10n; seed++) expect(drawClockJumps(seed, replicaCount, 10_000, undefined).jumps).toEqual([])
  })

  it("a clock's error from jumps steps at each jump's tick and stays until the next; each jump is due once", () => {
    let seed = 1n
    while (drawClockJumps(seed, 5, 10_000, undefined).jumps.length < 2) seed++
    const jumps = drawClockJumps(seed, 5, 10_000, undefined)
    const [first] = jumps.jumps
    const tickMs = 10
    expect(jumps.offsetMs(first!.replica, first!.tick * tickMs - 1, tickMs)).toBe(0)
    expect(jumps.offsetMs(first!.replica, first!.tick * tickMs, tickMs)).toBe(first!.offsetMs)
    let due = 0
    for (let tick = 1; tick <= 10_000; tick++) due += jumps.due(tick).length
    expect(due).toBe(jumps.jumps.length)
    expect(jumps.due(10_000)).toEqual([])
  })
})
